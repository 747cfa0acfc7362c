"""A consumer process: a Kafka consumer group member whose effects, consumed offsets and
outgoing messages commit in one transaction of its own store.

Per batch (``getmany``):

1. :meth:`ConsumerProcess.prepare` the messages — work that needs no store (decoding,
   signature checks);
2. in one store transaction: forget what earlier batches got acknowledged, skip what
   the store says was already handled, :meth:`~ConsumerProcess.handle` the rest (the
   subclass writes its effect and queues messages in the outbox), record the next offset
   of each partition; commit;
3. hand the new outbox messages to the producer, in order, and let their
   acknowledgements arrive while the next batches are handled (a commit takes those
   already in, oldest batch first, and never waits for the rest).

:meth:`ConsumerProcess.serve` overlaps the stages: batch N+1 is fetched and prepared
while batch N is handled. A rebalance waits for the batch being handled and drops the one
prepared ahead (its partitions may have moved). The store, not Kafka's group offsets,
says where to resume; a partition's new owner first produces what its previous owner
committed but did not get acknowledged.

Everything runs on the event loop's thread, stores included: a process gets its
parallelism from other processes (``crg gateway --processes``), not from threads. Handing
each batch to worker threads and back cost more than it saved on a busy machine — every
hop waits for the scheduler: at 1,000 events/s, p99 publish → ITMO was 85–96 ms with
them and 51–54 ms without (``docs/performance.md``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError

from gateway.storage.outbox import Headers, OutboxMessage, through
from gateway.streaming.access import KafkaAccess, refusals
from gateway.streaming.produce import send_in_batches
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.stream")

P = TypeVar("P")  # what preparing a message yields


class Interrupted(Exception):
    """The process is stopping in the middle of a batch."""


@dataclass(frozen=True)
class Incoming:
    value: bytes
    headers: Headers
    key: bytes | None
    source: str  # topic/partition/offset
    partition: int = 0
    offset: int = 0


class ProcessStore(Protocol):
    last_outbox: list[OutboxMessage]

    def transaction(self) -> AbstractContextManager[Any]: ...
    def offsets(self, topic: str) -> dict[int, int]: ...
    def set_offsets(self, topic: str, next_offsets: dict[int, int]) -> None: ...
    def outbox_pending(
        self, partitions: Sequence[int] | None = None, limit: int = 10_000
    ) -> list[OutboxMessage]: ...
    def outbox_done(self, through: Mapping[int, int]) -> None: ...


@dataclass
class Batch(Generic[P]):
    """Fetched and prepared messages, ready to be handled."""

    incoming: list[Incoming]
    prepared: list[P]
    next_offsets: dict[TopicPartition, int]
    generation: int  # the assignment it was fetched under
    started: float

    def items(self) -> Iterator[tuple[Incoming, P]]:
        return zip(self.incoming, self.prepared, strict=True)


class _ResumeFromStore(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, process: ConsumerProcess[Any]) -> None:
        self.process = process

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.process.release()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.process.take_over(assigned)


class ConsumerProcess(Generic[P]):
    """Subclasses say how to :meth:`prepare` a message and how to :meth:`handle` a batch
    inside the store's transaction."""

    #: client id and log prefix
    name = "crg-process"
    #: how long a batch may take before the group takes the partitions away
    max_poll_interval_ms = 300_000
    #: how long the broker may hold a fetch waiting for data (tansu holds it that long
    #: whenever nothing is there yet). Each fetch costs tansu more as its memory storage
    #: fills: over 30 s at 1,000 events/s, p99 publish → ITMO was 108–146 ms with 10 ms
    #: (the last 5 s: 150–164) and 86–90 ms with 20 (``docs/performance.md``); it costs
    #: no throughput, as a busy partition always has data
    fetch_max_wait_ms = 20

    def __init__(
        self,
        *,
        kafka: KafkaAccess | str,
        store: ProcessStore,
        topic: str,
        group_id: str,
        topics: Topics,
        outputs: Topics | None = None,
        idempotence: bool = False,
        max_batch: int = 2000,
    ) -> None:
        self.kafka = KafkaAccess.of(kafka)
        self.store = store
        self.topic = topic
        self.group_id = group_id
        #: where its outputs go: the topics it reads by default; a scratch replay's own
        self.topics = topics if outputs is None else outputs
        self.idempotence = idempotence
        self.max_batch = max_batch
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.processed = 0
        #: per committed batch, in order: acknowledged through which offset per partition
        self._in_flight: collections.deque[asyncio.Task[dict[int, int]]] = collections.deque()
        self._offsets_committed_at = 0.0  # when Kafka's group offsets were last committed
        self._group_offsets: dict[TopicPartition, int] = {}  # not yet committed to Kafka
        self._background: set[asyncio.Task[None]] = set()
        self._acked: dict[int, int] = {}  # acknowledged through offset, per partition
        self._handling = asyncio.Lock()  # held while a batch is handled and handed over
        self._generation = 0  # bumped when partitions move
        self.stopping = asyncio.Event()  # set when the process is asked to stop

    # -- what subclasses provide -------------------------------------------------------------
    def prepare(self, messages: list[Incoming]) -> list[P]:
        """Work on messages that needs no store (done while the batch before is handled)."""
        raise NotImplementedError

    async def act(self, batch: Batch[P]) -> None:
        """Async work on a prepared batch before its transaction (e.g. calls to a remote
        service, whose outcomes :meth:`handle` then records). Raise :class:`Interrupted`
        to drop the batch uncommitted: it is fetched again after a restart."""

    def handle(self, items: list[tuple[Incoming, P]]) -> dict[str, int]:
        """Apply a batch inside the store's open transaction; queue outgoing messages in
        the store's outbox; return counts by outcome."""
        raise NotImplementedError

    async def idle(self) -> None:
        """A fetch brought nothing: work that no consumed message causes may run here
        (with :meth:`commit_aside`)."""

    def side_partitions(self) -> list[int]:
        """Outbox source partitions of messages no consumed message caused (negative
        numbers by convention): produced by whoever takes over the partitions."""
        return []

    async def commit_aside(self, work: Callable[[], object]) -> None:
        """Run ``work`` in one store transaction of its own, outside any batch, and
        produce what it put in the outbox (queued under :meth:`side_partitions`)."""
        async with self._handling:
            self._collect_acks()
            forget, self._acked = self._acked, {}
            with self.store.transaction():
                self.store.outbox_done(forget)
                work()
            outbox = self.store.last_outbox
            futures = await self._send(outbox)
            self._in_flight.append(asyncio.create_task(_through_when_acked(outbox, futures)))

    # -- the producer ------------------------------------------------------------------------
    async def _send(self, messages: Sequence[OutboxMessage]) -> list[asyncio.Future[Any]]:
        """Enqueue in order, in batches (per-partition order is kept)."""
        assert self.producer is not None
        return await send_in_batches(
            self.producer, ((m.topic, m.key, m.value, m.headers) for m in messages)
        )

    async def settle_acks(self) -> None:
        """Wait for the producer to acknowledge everything handed to it so far."""
        while self._in_flight:
            self._take_acked(await self._in_flight.popleft())

    def _collect_acks(self) -> None:
        """Take the acknowledgements already in, without waiting, oldest batch first: a
        later batch's acknowledgement must not clear an earlier batch's messages."""
        while self._in_flight and self._in_flight[0].done():
            self._take_acked(self._in_flight.popleft().result())  # raises if a send failed

    def _take_acked(self, through: dict[int, int]) -> None:
        for partition, offset in through.items():
            self._acked[partition] = max(offset, self._acked.get(partition, -1))

    async def _forget_acked(self) -> None:
        await self.settle_acks()
        if self._acked:
            self.store.outbox_done(self._acked)
            self._acked = {}

    # -- partitions --------------------------------------------------------------------------
    async def release(self) -> None:
        """Partitions are being revoked: finish the batch being handled, wait for its
        messages to be acknowledged, and drop anything fetched ahead."""
        async with self._handling:
            self._generation += 1
            await self._forget_acked()
            self._group_offsets.clear()  # the partitions' next owner reports them

    async def take_over(self, assigned: list[TopicPartition]) -> None:
        """Produce what a previous owner of these partitions committed but did not get
        acknowledged, then resume each partition where the store says."""
        assert self.consumer is not None
        async with self._handling:
            self._generation += 1
            await self._forget_acked()  # or they would count as pending below
            partitions = sorted(tp.partition for tp in assigned if tp.topic == self.topic)
            while pending := self.store.outbox_pending(partitions + self.side_partitions()):
                await asyncio.gather(*await self._send(pending))
                self.store.outbox_done(through(pending))
                log.info(f"{self.name}.outbox_recovered", messages=len(pending))
            stored = self.store.offsets(self.topic)
            log.info(
                f"{self.name}.assigned",
                partitions=partitions,
                resume_at={p: stored[p] for p in partitions if p in stored},
            )
            for tp in assigned:
                if tp.partition in stored:
                    self.consumer.seek(tp, stored[tp.partition])
                else:
                    await self.consumer.seek_to_beginning(tp)

    # -- one batch ---------------------------------------------------------------------------
    async def fetch(self, timeout_ms: int = 500) -> Batch[P] | None:
        """Fetch a batch and prepare it."""
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
        return Batch(
            incoming,
            self.prepare(incoming),
            {tp: messages[-1].offset + 1 for tp, messages in fetched.items()},
            generation,
            started,
        )

    def _commit(
        self, batch: Batch[P], forget: dict[int, int]
    ) -> tuple[dict[str, int], list[OutboxMessage]]:
        """One store transaction for the batch."""
        with self.store.transaction():
            self.store.outbox_done(forget)
            stored = self.store.offsets(self.topic)
            fresh = [(m, p) for m, p in batch.items() if m.offset >= stored.get(m.partition, 0)]
            counts = self.handle(fresh) if fresh else {}
            if len(fresh) < len(batch.incoming):  # a rebalance moved a fetch position back
                counts["skipped"] = len(batch.incoming) - len(fresh)
            next_offsets: dict[int, int] = {}
            for m, _ in fresh:
                next_offsets[m.partition] = m.offset + 1
            self.store.set_offsets(self.topic, next_offsets)
        return counts, self.store.last_outbox

    async def settle(self, batch: Batch[P]) -> int:
        """Handle a prepared batch and hand its messages to the producer; return how many
        messages it handled (none if its partitions moved since it was fetched)."""
        assert self.consumer is not None
        if batch.generation != self._generation:
            return 0  # fetched under an assignment that has changed
        try:
            # outside the lock: a rebalance need not wait for remote calls, which are
            # idempotent, so a partition's next owner may safely make them again
            await self.act(batch)
        except Interrupted:
            return 0  # stopping: not committed, handled again after a restart
        async with self._handling:
            if batch.generation != self._generation:
                return 0  # fetched under an assignment that has changed
            self._collect_acks()  # earlier batches' messages already on the broker
            forget, self._acked = self._acked, {}
            counts: dict[str, int]
            outbox: list[OutboxMessage]
            counts, outbox = self._commit(batch, forget)
            futures = await self._send(outbox)
            self._in_flight.append(asyncio.create_task(_through_when_acked(outbox, futures)))
        handled: int = len(batch.incoming) - counts.get("skipped", 0)
        self.processed += handled
        self.batch_done(batch, counts)
        if counts.get("skipped"):
            log.info(f"{self.name}.skipped_handled", count=counts["skipped"])
        self._commit_group_offsets(batch.next_offsets)
        return handled

    def _commit_group_offsets(self, next_offsets: dict[TopicPartition, int]) -> None:
        """Kafka's group offsets only inform lag tooling (the store is authoritative):
        committed in the background, at most once a second, off the batch's path."""
        self._group_offsets.update(next_offsets)
        now = time.monotonic()
        if now - self._offsets_committed_at < 1.0:
            return
        self._offsets_committed_at = now
        task = asyncio.create_task(self._commit_group_offsets_now())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _commit_group_offsets_now(self) -> None:
        offsets, self._group_offsets = self._group_offsets, {}
        if offsets and self.consumer is not None:
            # bounded: a commit waiting out a rebalance must not hold up a stop
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.consumer.commit(offsets)

    def batch_done(self, batch: Batch[P], counts: dict[str, int]) -> None:
        """A hook for metrics once a batch is committed."""

    async def step(self, timeout_ms: int = 500) -> int:
        """Fetch, handle and route one batch, one stage after the other; return how many
        messages it handled. :meth:`serve` overlaps the stages instead."""
        batch = await self.fetch(timeout_ms)
        if batch is None:
            async with self._handling:
                await self._forget_acked()
            await self.idle()
            return 0
        return await self.settle(batch)

    # -- life cycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            **self.kafka.options(),
            acks="all",
            enable_idempotence=self.idempotence,
            linger_ms=2,
            client_id=self.name,
        )
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            **self.kafka.options(),
            group_id=self.group_id,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            max_poll_interval_ms=self.max_poll_interval_ms,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        self.consumer.subscribe([self.topic], listener=_ResumeFromStore(self))
        await self.consumer.start()
        log.info(f"{self.name}.started", topic=self.topic, kafka=self.kafka.describe())

    async def stop(self) -> None:
        try:
            async with self._handling:
                await self._forget_acked()
            await asyncio.gather(*self._background)
            await self._commit_group_offsets_now()
        finally:
            if self.consumer is not None:
                await self.consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
            log.info(f"{self.name}.stopped", processed=self.processed)

    async def serve(self, stop: asyncio.Event) -> None:
        """Handle batches until ``stop`` is set, fetching and preparing one ahead."""
        ahead: asyncio.Task[Batch[P] | None] = asyncio.create_task(self.fetch())
        try:
            while not stop.is_set():
                batch = await ahead
                ahead = asyncio.create_task(self.fetch())
                if batch is None:
                    async with self._handling:
                        await self._forget_acked()
                    await self.idle()
                else:
                    await self.settle(batch)
        finally:
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ahead  # a batch fetched ahead is not handled: refetched next time

    async def run(self, stop: asyncio.Event) -> None:
        """Start (waiting for an unreachable broker), then :meth:`serve` until ``stop``.
        Kafka refusing the credentials or an ACL refusing an operation ends it with
        :class:`KafkaAccessRefused`: no retry can help."""
        if not await self._start_when_reachable(stop):
            return
        watcher = asyncio.create_task(self._watch(stop))
        async with refusals(self.kafka):
            try:
                await self.serve(stop)
            finally:
                watcher.cancel()
                await self.stop()

    async def _close_clients(self) -> None:
        """After a failed start: close what was opened, as it was."""
        for client in (self.consumer, self.producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        self.consumer = self.producer = None

    async def _start_when_reachable(self, stop: asyncio.Event) -> bool:
        """Start; while no broker can be reached, retry with back-off until ``stop``."""
        delay = 0.5
        while True:
            try:
                async with refusals(self.kafka):
                    await self.start()
                return True
            except KafkaConnectionError as exc:
                await self._close_clients()
                log.warning(
                    f"{self.name}.kafka_unreachable",
                    kafka=self.kafka.describe(),
                    error=str(exc),
                    retry_in=delay,
                )
            except BaseException:
                await self._close_clients()
                raise
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            if stop.is_set():
                return False
            delay = min(delay * 2, 30.0)

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopping.set()


async def _through_when_acked(
    outbox: list[OutboxMessage], futures: list[asyncio.Future[Any]]
) -> dict[int, int]:
    await asyncio.gather(*futures)
    return through(outbox)
