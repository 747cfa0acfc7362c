"""A gateway running in the test's event loop against the real broker and a real ledger."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import SignedMessage, header_value
from gateway.service.consumer import Gateway
from gateway.service.ledger.store import LedgerStore
from gateway.streaming.topics import Topics, ensure_topics, topic_partitions
from tests.support.brokers import Broker


@dataclass
class Routed:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    partition: int


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

    async def start(self) -> Harness:
        await ensure_topics(self.broker.bootstrap_servers, self.topics.all(), self.partitions)
        self.gateway = Gateway(
            kafka=self.broker.bootstrap_servers,
            ledger=self.ledger,
            keys=lambda: self.keys,
            codec=default_codec(),
            topics=self.topics,
            idempotence=self.broker.idempotence if self.idempotence is None else self.idempotence,
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

    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        known = await topic_partitions(broker.bootstrap_servers, topic)
        partitions = [TopicPartition(topic, p) for p in known]
        if not partitions:
            return []  # no such topic: nothing on it
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[Routed] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        # tansu's end offsets can lag behind batched writes (the last batch's first
        # offset + 1): read on until the reported ends are passed and a fetch is empty
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                out += [Routed(m.key, m.value, dict(m.headers), tp.partition) for m in msgs]
            if not batch and not await behind():
                return out
    finally:
        await consumer.stop()


def reason_of(routed: Routed) -> str:
    return (header_value(list(routed.headers.items()), "crg_reason") or b"").decode()
