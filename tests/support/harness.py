"""A gateway running in the test's event loop against the real broker and a real ledger."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.contract.attestation import GATEWAY_OWNER, Attester
from gateway.contract.authorization import PartyAuthorization
from gateway.contract.codec import default_codec
from gateway.contract.itmo_message import PartySigner, party_owner
from gateway.contract.keys import KeyRecord, KeyRing
from gateway.contract.message import SignedMessage, header_value
from gateway.keystore.private import generate
from gateway.publishing.letters import publish_letters
from gateway.service.consumer import Gateway
from gateway.service.ledger.store import LedgerStore
from gateway.streaming.topics import Topics, ensure_topics
from gateway.streaming.topics import read_to_end as topics_read_to_end
from ops.loadgen import T0
from tests.support.brokers import Broker


@dataclass
class Routed:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    partition: int


def gateway_identity() -> tuple[Attester, KeyRecord]:
    """A gateway attestation key for a test: the attester and its public record."""
    private, record = generate(GATEWAY_OWNER, T0)
    return Attester(record.key_id, private), record


@dataclass
class Harness:
    broker: Broker
    ledger: LedgerStore
    keys: KeyRing
    partitions: int = 3
    topics: Topics = field(default_factory=lambda: Topics(f"t{uuid.uuid4().hex[:8]}"))
    gateway: Gateway | None = None
    sent: int = 0
    idempotence: bool | None = None  # None: as the broker allows (on for Apache Kafka)
    #: the gateway's attestation key: its verdicts are attested as in production
    identity: tuple[Attester, KeyRecord] = field(default_factory=gateway_identity)
    #: the host Parties' keys that signed the letters published (:meth:`publish_letters`)
    parties: dict[str, tuple[PartySigner, KeyRecord]] = field(default_factory=dict)

    @property
    def trust(self) -> KeyRing:
        """The trust store a consumer of the verified topic uses: the registries' keys,
        the gateway's and the Parties' that published letters."""
        return KeyRing([*self.keys, self.identity[1], *(r for _, r in self.parties.values())])

    async def publish_letters(self, *letters: PartyAuthorization) -> None:
        """Each host Party's letters, signed with a key of that Party (made once)."""
        for party in {letter.party for letter in letters} - set(self.parties):
            private, record = generate(party_owner(party), T0)
            self.parties[party] = (PartySigner(party, record.key_id, private), record)
        signed = [(letter, self.parties[letter.party][0]) for letter in letters]
        await publish_letters(self.broker.bootstrap_servers, self.topics.authorizations, signed)

    async def start(self) -> Harness:
        await ensure_topics(self.broker.bootstrap_servers, self.topics.all(), self.partitions)
        self.gateway = Gateway(
            kafka=self.broker.bootstrap_servers,
            ledger=self.ledger,
            keys=lambda: self.keys,
            codec=default_codec(),
            topics=self.topics,
            idempotence=self.broker.idempotence if self.idempotence is None else self.idempotence,
            attester=self.identity[0],
        )
        await self.gateway.start()
        return self

    async def stop(self) -> None:
        if self.gateway:
            await self.gateway.stop()

    async def send(self, *messages: SignedMessage | tuple) -> None:  # type: ignore[type-arg]
        """Signed messages, or (key, value, headers[, partition]): on the partition given,
        else on the key's."""
        producer = AIOKafkaProducer(bootstrap_servers=self.broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for m in messages:
                key, value, headers, *partition = (
                    (m.key, m.value, list(m.headers)) if isinstance(m, SignedMessage) else m
                )
                await producer.send_and_wait(
                    self.topics.raw,
                    value,
                    key=key,
                    headers=headers,
                    partition=partition[0] if partition else None,
                )
                self.sent += 1
        finally:
            await producer.stop()

    async def drain(self, wait_seconds: float = 30) -> None:
        """Run the gateway until it has processed everything sent."""
        assert self.gateway is not None
        try:
            async with asyncio.timeout(wait_seconds):  # a hung step fails, with its stack
                while self.gateway.processed < self.sent:
                    await self.gateway.step(timeout_ms=200)
                await self.gateway.settle_acks()  # the verdicts are on the broker
        except TimeoutError as exc:
            raise TimeoutError(f"processed {self.gateway.processed} of {self.sent}") from exc

    async def read(
        self, topic: str, expected: int | None = None, wait: float = 10.0
    ) -> list[Routed]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.broker.bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        out: list[Routed] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        try:
            while loop.time() < deadline and (expected is None or len(out) < expected):
                batch = await consumer.getmany(timeout_ms=200)
                for tp, msgs in batch.items():
                    out += [Routed(m.key, m.value, dict(m.headers), tp.partition) for m in msgs]
        finally:
            await consumer.stop()
        return out


async def read_to_end(broker: Broker, topic: str) -> list[Routed]:
    """Every message on ``topic`` up to its current end, whatever their number."""
    return [
        Routed(m.key, m.value or b"", dict(m.headers), m.partition)
        for m in await topics_read_to_end(broker.bootstrap_servers, topic)
    ]


def reason_of(routed: Routed) -> str:
    return (header_value(list(routed.headers.items()), "crg_reason") or b"").decode()
