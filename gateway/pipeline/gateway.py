"""``crg gateway``: the consumer group on the raw topic.

Per batch (``getmany``): judge every message in one ledger transaction that also
stores the verdict messages (outbox) and the next offset of each partition; commit;
then produce the outbox and delete what the broker acknowledged. A crash before the
commit loses nothing (the batch is judged again from the same ledger state); a crash
after it re-sends the outbox, so a verdict is never produced twice *differently* —
at worst an identical message twice, which adapters drop by event id.
The ledger, not Kafka's group offsets, says where to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from ..broker.topics import Topics
from ..contract.codec import SingleObjectCodec
from ..contract.keys import KeyRing
from ..ledger.store import LedgerStore
from ..metrics import ALERTS, BATCH_SECONDS, BATCH_SIZE, EVENTS, LAG
from .verdict import Incoming, judge, route

log = structlog.get_logger("crg.gateway")


class _ResumeFromLedger(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.gateway.seek_to_ledger(assigned)


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
        self.ready = asyncio.Event()

    def keys(self) -> KeyRing:
        return self._keys() if callable(self._keys) else self._keys

    async def seek_to_ledger(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        stored = await asyncio.to_thread(self.ledger.offsets, self.topics.raw)
        log.info(
            "gateway.assigned",
            partitions=sorted(tp.partition for tp in assigned),
            resume_at={p: o for p, o in stored.items()},
        )
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
            else:
                await self.consumer.seek_to_beginning(tp)

    def _process(self, batch: dict[TopicPartition, list[object]]) -> dict[str, int]:
        """Judge a batch in one transaction (runs in a worker thread)."""
        counts: dict[str, int] = {}
        keys = self.keys()
        with self.ledger.transaction():
            stored = self.ledger.offsets(self.topics.raw)
            next_offsets: dict[int, int] = {}
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset < stored.get(tp.partition, 0):  # type: ignore[attr-defined]
                        counts["skipped"] = counts.get("skipped", 0) + 1
                        continue  # judged before; a rebalance moved the fetch position back
                    msg = Incoming(
                        m.value or b"",
                        list(m.headers or ()),
                        m.key,  # type: ignore[attr-defined]
                        f"{tp.topic}/{tp.partition}/{m.offset}",
                    )  # type: ignore[attr-defined]
                    verdict = judge(msg, keys, self.codec, self.ledger)
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
                    next_offsets[tp.partition] = m.offset + 1  # type: ignore[attr-defined]
            self.ledger.set_offsets(self.topics.raw, next_offsets)
        return counts

    async def flush_outbox(self) -> int:
        """Produce every stored verdict, in order; delete them once acknowledged."""
        assert self.producer is not None
        sent = 0
        while True:
            pending = await asyncio.to_thread(self.ledger.outbox_pending)
            if not pending:
                return sent
            futures = [
                await self.producer.send(m.topic, m.value, key=m.key, headers=m.headers)
                for m in pending
            ]
            await asyncio.gather(*futures)
            await asyncio.to_thread(self.ledger.outbox_done, pending[-1].id)
            sent += len(pending)

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks="all",
            enable_idempotence=self.idempotence,
            linger_ms=2,
            client_id="crg-gateway",
        )
        await self.producer.start()
        await self.flush_outbox()  # verdicts committed before a crash but not yet produced
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
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        log.info("gateway.stopped", processed=self.processed)

    async def step(self, timeout_ms: int = 500) -> int:
        """Fetch, judge and route one batch; return how many messages it held."""
        assert self.consumer is not None
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_batch)
        self.ready.set()
        size = sum(len(v) for v in batch.values())
        if not size:
            return 0
        started = time.perf_counter()
        counts = await asyncio.to_thread(self._process, batch)  # type: ignore[arg-type]
        await self.flush_outbox()
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
            position = await self.consumer.position(tp)
            if highwater is not None:
                LAG.labels(str(tp.partition)).set(max(highwater - position, 0))
        return size

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            while not stop.is_set():
                await self.step()
        finally:
            await self.stop()
