"""The host Parties' letters of authorization as a national adapter sees them: the whole
authorizations topic, read from its beginning and followed, without a consumer group
(every adapter reads every letter; nothing is committed to Kafka — the adapter's store
records which version of each letter took effect, with the effect).

Each message is checked as if anyone could have written the topic
(:func:`~gateway.contract.authorization.verify_authorization`): held letters are kept in
topic order, refused ones with their reason. A broker that cannot be reached, or a topic
that does not exist yet, is waited for with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from gateway.contract.authorization import PartyAuthorization, verified_authorizations
from gateway.contract.keys import KeyRing
from gateway.streaming.access import KafkaAccess
from gateway.streaming.topics import topic_partitions

log = structlog.get_logger("crg.national.letters")


@dataclass(frozen=True)
class Letter:
    """One held letter version, as read."""

    letter: PartyAuthorization
    value: bytes
    partition: int
    offset: int
    source: str


@dataclass(frozen=True)
class RefusedLetter:
    partition: int
    offset: int
    source: str
    reason: str
    message: str


class LetterFeed:
    def __init__(self, kafka: KafkaAccess | str, topic: str, keys: Callable[[], KeyRing]) -> None:
        self.kafka = KafkaAccess.of(kafka)
        self.topic = topic
        self.keys = keys
        self.held: list[Letter] = []
        self.refused: list[RefusedLetter] = []
        #: set once everything on the topic when it was first read has been taken
        self.caught_up = asyncio.Event()
        self._next: dict[int, int] = {}  # next offset per partition
        self.partitions: list[int] = []  # of the topic, once it exists

    @property
    def seen(self) -> int:
        """How many messages were taken (held or refused): grows as letters arrive."""
        return len(self.held) + len(self.refused)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic until ``stop``; transient faults are retried with back-off."""
        delay = 0.5
        while not stop.is_set():
            try:
                await self._follow(stop)
                return
            except (KafkaError, OSError) as exc:
                log.warning("letters.unreachable", topic=self.topic, error=str(exc),
                            retry_in=delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(delay * 2, 30.0)

    async def _partitions(self, stop: asyncio.Event) -> list[TopicPartition]:
        while not stop.is_set():
            known = await topic_partitions(self.kafka, self.topic)
            if known:
                self.partitions = known
                return [TopicPartition(self.topic, p) for p in known]
            self.caught_up.set()  # no topic, no letter: nothing to wait for
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await stop.wait()
        return []

    async def _follow(self, stop: asyncio.Event) -> None:
        partitions = await self._partitions(stop)
        if not partitions:
            return
        consumer = AIOKafkaConsumer(
            **self.kafka.options(), group_id=None, enable_auto_commit=False,
            client_id="crg-national-letters",
        )  # fmt: skip
        await consumer.start()
        try:
            consumer.assign(partitions)
            for tp in partitions:
                if tp.partition in self._next:
                    consumer.seek(tp, self._next[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            ends = await consumer.end_offsets(partitions)
            while not stop.is_set():
                fetched = await consumer.getmany(timeout_ms=500)
                for tp, records in fetched.items():
                    self._take(
                        [(f"{tp.topic}/{tp.partition}/{r.offset}", r.value or b"",
                          list(r.headers), tp.partition, r.offset) for r in records]
                    )  # fmt: skip
                if not fetched and all(self._next.get(tp.partition, 0) >= ends[tp]
                                       for tp in partitions):  # fmt: skip
                    self.caught_up.set()
                if not fetched and not self.caught_up.is_set():
                    # tansu's end offsets can run ahead of what a fetch returns at once
                    ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()

    def _take(self, records: list[tuple[str, bytes, list[tuple[str, bytes]], int, int]]) -> None:
        keys = self.keys()
        for source, value, headers, partition, offset in records:
            held, refused = verified_authorizations([(source, value, headers)], keys)
            for letter in held:
                self.held.append(Letter(letter, value, partition, offset, source))
                log.info("letters.held", party=letter.party,
                         letter=letter.letter_of_authorization, version=letter.version,
                         status=letter.status, source=source)  # fmt: skip
            for _, reason, message in refused:
                self.refused.append(RefusedLetter(partition, offset, source, reason, message))
                log.error("letters.refused", source=source, reason=reason,
                          message=message[:300])  # fmt: skip
            self._next[partition] = offset + 1
