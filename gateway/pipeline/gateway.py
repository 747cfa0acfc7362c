"""``crg gateway``: the consumer group on the raw topic.

Per batch (``getmany``):

1. authenticate every message (signature, key, decoding, model) on all cores;
2. judge them against the ledger in one transaction that also stores the verdict
   messages (the outbox, keyed by the raw partition and offset that caused them), the
   next offset of each partition, and forgets what the previous batch got acknowledged;
   commit;
3. hand the new outbox rows to the producer, in order, and let their acknowledgements
   arrive while the next batch is judged.

:meth:`Gateway.run` overlaps the stages: batch N+1 is fetched and authenticated while
batch N is judged. A rebalance waits for the batch being judged and drops the one
authenticated ahead (its partitions may have moved; the ledger says where to resume).

A crash before a commit loses nothing: the batch is judged again from the same ledger
state. A crash after it leaves outbox rows that the partition's next owner produces
when the partition is assigned to it: a verdict is never produced twice *differently*;
at worst the identical message twice, which downstream consumers drop by event id.
The ledger, not Kafka's group offsets, says where to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from ..broker.topics import Topics
from ..contract.codec import SingleObjectCodec
from ..contract.keys import KeyRing
from ..contract.models import RegistryEvent
from ..ledger.store import LedgerStore, OutboxMessage
from ..metrics import ALERTS, BATCH_SECONDS, BATCH_SIZE, EVENTS, LAG
from .verdict import Incoming, Verdict, authenticate, judge_authentic, route

log = structlog.get_logger("crg.gateway")


class _ResumeFromLedger(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.gateway.release()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.gateway.take_over(assigned)


@dataclass
class Batch:
    """Fetched and authenticated messages, ready to be judged."""

    incoming: list[Incoming]
    firsts: list[RegistryEvent | Verdict]  # the event, or a verdict already reached
    next_offsets: dict[TopicPartition, int]
    generation: int  # the assignment it was fetched under
    started: float


class Gateway:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        ledger: LedgerStore,
        keys: KeyRing | Callable[[], KeyRing],
        codec: SingleObjectCodec,
        topics: Topics,
        idempotence: bool = False,
        max_batch: int = 2000,
        workers: int | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.ledger = ledger
        self._keys = keys
        self.codec = codec
        self.topics = topics
        self.idempotence = idempotence
        self.max_batch = max_batch
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.processed = 0
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="crg-verify")
        self._acks: asyncio.Task[dict[int, int]] | None = None  # the last batch's outbox
        self._acked: dict[int, int] = {}  # acknowledged through offset, per raw partition
        self._db = asyncio.Lock()  # one ledger user at a time (the store is not thread-safe)
        self._judging = asyncio.Lock()  # held while a batch is judged and handed over
        self._generation = 0  # bumped when partitions are revoked

    def keys(self) -> KeyRing:
        return self._keys() if callable(self._keys) else self._keys

    # -- partitions and the outbox -----------------------------------------------------------
    async def _ledger(self, fn: Callable[..., Any], *args: Any) -> Any:
        async with self._db:
            return await asyncio.to_thread(fn, *args)

    async def _send(self, messages: Sequence[OutboxMessage]) -> list[asyncio.Future[Any]]:
        """Enqueue in order (aiokafka keeps per-partition order of enqueued records)."""
        assert self.producer is not None
        return [
            await self.producer.send(m.topic, m.value, key=m.key, headers=m.headers)
            for m in messages
        ]

    async def settle_acks(self) -> None:
        """Wait for the producer to acknowledge everything handed to it so far."""
        if self._acks is not None:
            for partition, offset in (await self._acks).items():
                self._acked[partition] = max(offset, self._acked.get(partition, -1))
            self._acks = None

    async def _forget_acked(self) -> None:
        await self.settle_acks()
        if self._acked:
            await self._ledger(self.ledger.outbox_done, self._acked)
            self._acked = {}

    async def release(self) -> None:
        """Partitions are being revoked: finish the batch being judged, wait for its
        verdicts to be acknowledged, and drop anything fetched ahead."""
        async with self._judging:
            self._generation += 1
            await self._forget_acked()

    async def take_over(self, assigned: list[TopicPartition]) -> None:
        """Produce what a previous owner of these partitions committed but did not get
        acknowledged, then resume each partition where the ledger says."""
        assert self.consumer is not None
        async with self._judging:
            self._generation += 1
            await self._forget_acked()  # or they would count as pending below
            partitions = sorted(tp.partition for tp in assigned if tp.topic == self.topics.raw)
            while pending := await self._ledger(self.ledger.outbox_pending, partitions):
                await asyncio.gather(*await self._send(pending))
                await self._ledger(self.ledger.outbox_done, _through(pending))
                log.info("gateway.outbox_recovered", messages=len(pending), partitions=partitions)
            stored = await self._ledger(self.ledger.offsets, self.topics.raw)
            log.info(
                "gateway.assigned",
                partitions=partitions,
                resume_at={p: stored[p] for p in partitions if p in stored},
            )
            for tp in assigned:
                if tp.partition in stored:
                    self.consumer.seek(tp, stored[tp.partition])
                else:
                    await self.consumer.seek_to_beginning(tp)

    # -- one batch ---------------------------------------------------------------------------
    async def fetch(self, timeout_ms: int = 500) -> Batch | None:
        """Fetch a batch and authenticate it (signature, key, decoding, model) on every
        core: Ed25519 verification releases the GIL."""
        assert self.consumer is not None
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_batch)
        if not fetched:
            return None
        started = time.perf_counter()
        generation = self._generation
        incoming = [
            Incoming(
                m.value or b"",
                list(m.headers or ()),
                m.key,
                f"{tp.topic}/{tp.partition}/{m.offset}",
                tp.partition,
                m.offset,
            )
            for tp, messages in fetched.items()
            for m in messages
        ]
        keys = self.keys()
        loop = asyncio.get_running_loop()
        size = -(-len(incoming) // self.workers)
        chunks = [incoming[i : i + size] for i in range(0, len(incoming), size)]
        results = await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, _authenticate_all, chunk, keys, self.codec)
                for chunk in chunks
            )
        )
        return Batch(
            incoming,
            [r for chunk in results for r in chunk],
            {tp: messages[-1].offset + 1 for tp, messages in fetched.items()},
            generation,
            started,
        )

    def _judge(
        self, batch: Batch, forget: dict[int, int]
    ) -> tuple[dict[str, int], list[OutboxMessage]]:
        """Judge an authenticated batch in one ledger transaction (in a worker thread)."""
        counts: dict[str, int] = {}
        tally: dict[tuple[str, str], int] = {}  # verdicts by outcome and reason
        with self.ledger.transaction():
            self.ledger.outbox_done(forget)
            stored = self.ledger.offsets(self.topics.raw)
            next_offsets: dict[int, int] = {}
            for msg, first in zip(batch.incoming, batch.firsts, strict=True):
                if msg.offset < stored.get(msg.partition, 0):
                    counts["skipped"] = counts.get("skipped", 0) + 1
                    continue  # judged before; a rebalance moved the fetch position back
                verdict = (
                    first
                    if isinstance(first, Verdict)
                    else judge_authentic(msg, first, self.ledger)
                )
                route(msg, verdict, self.topics, self.ledger)
                reason = verdict.reason.value if verdict.reason else ""
                tally[verdict.outcome, reason] = tally.get((verdict.outcome, reason), 0) + 1
                for alert in verdict.alerts:
                    ALERTS.labels(str(alert["alert"])).inc()
                counts[verdict.outcome] = counts.get(verdict.outcome, 0) + 1
                event = verdict.event
                log.info(
                    "gateway.verdict",
                    verdict=verdict.outcome,
                    reason=reason or None,
                    event_id=event.event_id if event else None,
                    registry=event.registry_id if event else None,
                    source=msg.source,
                )
                next_offsets[msg.partition] = msg.offset + 1
            self.ledger.set_offsets(self.topics.raw, next_offsets)
        for (outcome, reason), n in tally.items():
            EVENTS.labels(outcome, reason).inc(n)
        return counts, self.ledger.last_outbox

    async def settle(self, batch: Batch) -> int:
        """Judge and route an authenticated batch; return how many messages it judged
        (none if its partitions were revoked since it was fetched)."""
        assert self.consumer is not None
        async with self._judging:
            if batch.generation != self._generation:
                return 0  # fetched under an assignment that has changed
            await self.settle_acks()  # the previous batch's verdicts are on the broker
            forget, self._acked = self._acked, {}
            counts, outbox = await self._ledger(self._judge, batch, forget)
            futures = await self._send(outbox)
            self._acks = asyncio.create_task(_through_when_acked(outbox, futures))
        size = len(batch.incoming)
        BATCH_SECONDS.observe(time.perf_counter() - batch.started)
        BATCH_SIZE.observe(size)
        judged = size - counts.get("skipped", 0)
        self.processed += judged
        if counts.get("skipped"):
            log.info("gateway.skipped_judged", count=counts["skipped"])
        # Kafka's group offsets only inform lag tooling; the ledger is authoritative.
        with contextlib.suppress(Exception):
            await self.consumer.commit(batch.next_offsets)
        for tp, position in batch.next_offsets.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                LAG.labels(str(tp.partition)).set(max(highwater - position, 0))
        return judged

    async def step(self, timeout_ms: int = 500) -> int:
        """Fetch, judge and route one batch, one stage after the other; return how many
        messages it judged. :meth:`run` overlaps the stages instead."""
        batch = await self.fetch(timeout_ms)
        if batch is None:
            await self._forget_acked()
            return 0
        return await self.settle(batch)

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            enable_idempotence=self.idempotence,
            linger_ms=2,
            client_id="crg-gateway",
        )
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.topics.group("gateway"),
            client_id="crg-gateway",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.consumer.subscribe([self.topics.raw], listener=_ResumeFromLedger(self))
        await self.consumer.start()
        log.info("gateway.started", topic=self.topics.raw, bootstrap=self.bootstrap_servers)

    async def stop(self) -> None:
        try:
            async with self._judging:
                await self._forget_acked()
        finally:
            if self.consumer is not None:
                await self.consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
            self._pool.shutdown(wait=False)
            log.info("gateway.stopped", processed=self.processed)

    async def serve(self, stop: asyncio.Event) -> None:
        """Judge until ``stop`` is set, fetching and authenticating one batch ahead."""
        ahead: asyncio.Task[Batch | None] = asyncio.create_task(self.fetch())
        try:
            while not stop.is_set():
                batch = await ahead
                ahead = asyncio.create_task(self.fetch())
                if batch is None:
                    async with self._judging:
                        await self._forget_acked()
                else:
                    await self.settle(batch)
        finally:
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ahead  # a batch fetched ahead is not judged: refetched next time

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await self.serve(stop)
        finally:
            await self.stop()


def _through(outbox: Sequence[OutboxMessage]) -> dict[int, int]:
    """The last raw offset per partition that caused these messages."""
    through: dict[int, int] = {}
    for m in outbox:
        through[m.source_partition] = max(m.source_offset, through.get(m.source_partition, -1))
    return through


async def _through_when_acked(
    outbox: list[OutboxMessage], futures: list[asyncio.Future[Any]]
) -> dict[int, int]:
    await asyncio.gather(*futures)
    return _through(outbox)


def _authenticate_all(
    chunk: list[Incoming], keys: KeyRing, codec: SingleObjectCodec
) -> list[RegistryEvent | Verdict]:
    return [authenticate(msg, keys, codec) for msg in chunk]
