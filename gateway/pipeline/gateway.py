"""``crg gateway``: the consumer group on the raw topic.

Per batch (``getmany``):

1. authenticate every message (signature, key, decoding, model) on all cores;
2. judge them against the ledger in one transaction that also stores the verdict
   messages (the outbox, tagged with their raw partition), the next offset of each
   partition, and forgets the previous batch's acknowledged outbox rows; commit;
3. hand the new outbox rows to the producer, in order, and let their acknowledgements
   arrive while the next batch is fetched and judged.

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
        await self.gateway.settle_acks()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.gateway.take_over(assigned)


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
        self._acks: asyncio.Task[list[int]] | None = None  # the previous batch's outbox
        self._acked: list[int] = []  # outbox ids acknowledged, to forget in the next commit
        self._db = asyncio.Lock()  # one ledger user at a time (the store is not thread-safe)

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
            self._acked += await self._acks
            self._acks = None

    async def take_over(self, assigned: list[TopicPartition]) -> None:
        """Produce what a previous owner of these partitions committed but did not get
        acknowledged, then resume each partition where the ledger says."""
        assert self.consumer is not None
        await self.settle_acks()
        partitions = sorted(tp.partition for tp in assigned if tp.topic == self.topics.raw)
        while pending := await self._ledger(self.ledger.outbox_pending, partitions):
            await asyncio.gather(*await self._send(pending))
            await self._ledger(self.ledger.outbox_done, [m.id for m in pending])
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
    async def _authenticate(self, incoming: list[Incoming]) -> list[RegistryEvent | Verdict]:
        """Signature, key, decoding and model checks, spread over the worker threads
        (Ed25519 verification releases the GIL, so this uses every core)."""
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
        return [r for chunk in results for r in chunk]

    def _judge(
        self, items: list[tuple[Incoming, RegistryEvent | Verdict, int]], forget: list[int]
    ) -> tuple[dict[str, int], list[OutboxMessage]]:
        """Judge an authenticated batch in one ledger transaction (in a worker thread)."""
        counts: dict[str, int] = {}
        with self.ledger.transaction():
            self.ledger.outbox_done(forget)
            stored = self.ledger.offsets(self.topics.raw)
            next_offsets: dict[int, int] = {}
            for msg, first, offset in items:
                if offset < stored.get(msg.partition, 0):
                    counts["skipped"] = counts.get("skipped", 0) + 1
                    continue  # judged before; a rebalance moved the fetch position back
                verdict = (
                    first
                    if isinstance(first, Verdict)
                    else judge_authentic(msg, first, self.ledger)
                )
                route(msg, verdict, self.topics, self.ledger)
                reason = verdict.reason.value if verdict.reason else ""
                EVENTS.labels(verdict.outcome, reason).inc()
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
                next_offsets[msg.partition] = offset + 1
            self.ledger.set_offsets(self.topics.raw, next_offsets)
        return counts, self.ledger.last_outbox

    async def step(self, timeout_ms: int = 500) -> int:
        """Fetch, judge and route one batch; return how many messages it held."""
        assert self.consumer is not None
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_batch)
        size = sum(len(v) for v in batch.values())
        if not size:
            await self.settle_acks()
            if self._acked:
                await self._ledger(self.ledger.outbox_done, self._acked)
                self._acked = []
            return 0
        started = time.perf_counter()
        fetched = [(tp, m) for tp, messages in batch.items() for m in messages]
        incoming = [
            Incoming(
                m.value or b"",
                list(m.headers or ()),
                m.key,
                f"{tp.topic}/{tp.partition}/{m.offset}",
                tp.partition,
            )
            for tp, m in fetched
        ]
        firsts = await self._authenticate(incoming)
        items = [
            (msg, first, m.offset)
            for msg, first, (_, m) in zip(incoming, firsts, fetched, strict=True)
        ]
        await self.settle_acks()  # the previous batch's verdicts are on the broker
        forget, self._acked = self._acked, []
        counts, outbox = await self._ledger(self._judge, items, forget)
        futures = await self._send(outbox)
        self._acks = asyncio.create_task(_ids_when_acked(outbox, futures))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        BATCH_SIZE.observe(size)
        self.processed += size - counts.get("skipped", 0)
        if counts.get("skipped"):
            log.info("gateway.skipped_judged", count=counts["skipped"])
        # Kafka's group offsets only inform lag tooling; the ledger is authoritative.
        with contextlib.suppress(Exception):
            await self.consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in batch.items()})
        for tp in batch:
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                LAG.labels(str(tp.partition)).set(
                    max(highwater - await self.consumer.position(tp), 0)
                )
        return size

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
            await self.settle_acks()
            if self._acked:
                await self._ledger(self.ledger.outbox_done, self._acked)
                self._acked = []
        finally:
            if self.consumer is not None:
                await self.consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
            self._pool.shutdown(wait=False)
            log.info("gateway.stopped", processed=self.processed)

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            while not stop.is_set():
                await self.step()
        finally:
            await self.stop()


async def _ids_when_acked(
    outbox: list[OutboxMessage], futures: list[asyncio.Future[Any]]
) -> list[int]:
    await asyncio.gather(*futures)
    return [m.id for m in outbox]


def _authenticate_all(
    chunk: list[Incoming], keys: KeyRing, codec: SingleObjectCodec
) -> list[RegistryEvent | Verdict]:
    return [authenticate(msg, keys, codec) for msg in chunk]
