"""``crg bench gateway``: events/s through verify + ledger checks + produce, next to the
bare loop on the same broker and the same events (consume + decode + verify + produce).

Both run as the same number of processes (``--processes``, default one per core), each
owning a share of the partitions: the gateway as ``crg gateway --processes N``, the bare
loop as N copies of itself. A rate is timed from the end of the first batch to the
last event, as the sum of what every process has done.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.collector import settle_collector
from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRecord, KeyRing, make_key_id, public_key_bytes
from gateway.contract.message import EventSigner, signature_headers
from gateway.logging import configure_logging
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.local_broker import LocalBroker
from gateway.streaming.produce import produce_all, send_in_batches
from gateway.streaming.topics import Topics, ensure_topics
from ops.loadgen import registry_stream
from ops.processes import Processes, trust_store

PARTITIONS = 4


@dataclass
class Figures:
    gateway_rate: float
    bare_rate: float
    events: int
    rss_tenth: float  # when the gateway had judged 10 % of the events
    rss_end: float
    store: str
    processes: int


async def _until(
    done: Callable[[], int],
    n: int,
    on_tenth: Callable[[], None] | None = None,
    check: Callable[[], None] | None = None,
    within: float = 1800,
) -> float:
    """Events/s from the moment ``done()`` first counts something to the moment it
    reaches ``n``; ``on_tenth`` runs once at 10 %, ``check`` raises if a runner died."""
    first, started = 0, 0.0
    deadline = time.monotonic() + within
    while (count := done()) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count:,} of {n:,} events after {within:.0f} s")
        if count and not started:  # the first batch includes fetch start-up
            started, first = time.perf_counter(), count
        if on_tenth is not None and count >= n // 10:
            on_tenth()
            on_tenth = None
        if check is not None:
            check()
        await asyncio.sleep(0.01)
    return (n - first) / (time.perf_counter() - started)


async def _bare(
    bootstrap: str,
    topic: str,
    out_topic: str,
    partitions: list[int],
    ring: KeyRing,
    progress: Callable[[int], None],
    stopped: Callable[[], bool],
) -> None:
    """The floor on some partitions: consume, verify and decode on the event loop's
    thread (as the gateway's processes do), produce; no model, no ledger."""
    codec = default_codec()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    try:
        while not stopped():
            batch = await consumer.getmany(timeout_ms=100, max_records=2000)
            fetched = [m for messages in batch.values() for m in messages]
            for m in fetched:
                key_id, signature = signature_headers(m.headers)
                ring.verify(key_id, m.value, signature)
                codec.decode(m.value)
            # produced as the gateway produces its verdicts
            outgoing = ((out_topic, m.key, m.value or b"", m.headers) for m in fetched)
            await asyncio.gather(*await send_in_batches(producer, outgoing))
            if fetched:
                progress(len(fetched))
    finally:
        await consumer.stop()
        await producer.stop()


def _bare_process(
    bootstrap: str,
    topic: str,
    out_topic: str,
    partitions: list[int],
    record: KeyRecord,
    done: Any,  # multiprocessing.Value
    stop: Any,  # multiprocessing.Event
) -> None:
    def progress(k: int) -> None:
        with done.get_lock():
            done.value += k

    settle_collector()  # as the gateway's processes do: the same runtime on both sides
    asyncio.run(
        _bare(bootstrap, topic, out_topic, partitions, KeyRing([record]), progress, stop.is_set)
    )


async def bare_loop(
    bootstrap: str,
    topic: str,
    out_topic: str,
    n: int,
    record: KeyRecord,
    processes: int = 1,
    partitions: int = PARTITIONS,
) -> float:
    """The bare loop over all ``n`` events of ``topic`` as ``processes`` processes, each
    owning every ``processes``-th partition; events/s."""
    context = multiprocessing.get_context("spawn")
    done, stop = context.Value("q", 0), context.Event()
    shares = [list(range(partitions))[i::processes] for i in range(processes)]
    runners = [
        context.Process(
            target=_bare_process,
            args=(bootstrap, topic, out_topic, share, record, done, stop),
            daemon=True,
        )
        for share in shares
    ]
    for runner in runners:
        runner.start()

    def check() -> None:
        if any(r.exitcode not in (None, 0) for r in runners):
            raise RuntimeError("a bare-loop process failed")

    try:
        return await _until(lambda: int(done.value), n, check=check)
    finally:
        stop.set()
        for runner in runners:
            runner.join(30)


def fresh_schema(url: str, name: str) -> str:
    """``url`` with its search path set to schema ``name``, created (empty) if absent:
    a benchmark's stores never meet an earlier run's rows."""

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"


async def gateway_run(
    bootstrap: str,
    topics: Topics,
    n: int,
    record: KeyRecord,
    ledger_url: str | None,
    processes: int,
    data: Path,
) -> tuple[float, float, float]:
    """``crg gateway --processes N`` over all ``n`` events; (events/s, RSS at 10 %, RSS
    at the end) of the gateway and its members."""
    trust_store(data, [record])
    env = {
        **os.environ,
        "CRG_DATA_DIR": str(data),
        "CRG_TOPIC_PREFIX": topics.prefix,
        "CRG_BOOTSTRAP_SERVERS": bootstrap,
        "CRG_LOG_FORMAT": "json",
        "CRG_LOG_LEVEL": "warning",
    }
    if ledger_url:  # PostgreSQL
        ledger_url = fresh_schema(ledger_url, f"{topics.prefix}_ledger")
        env["CRG_LEDGER_URL"] = ledger_url
    ledger = open_ledger(ledger_url or f"sqlite://{data / 'gateway' / 'ledger.sqlite'}")
    gateway = Processes(data, env, {"gateway": ["gateway", "--processes", str(processes)]})
    gateway.start_all()  # after the ledger's tables exist: no concurrent DDL
    rss: dict[str, float] = {}
    try:

        def tenth() -> None:
            rss["tenth"] = gateway.rss()["gateway"]

        rate = await _until(
            lambda: sum(ledger.offsets(topics.raw).values()), n, tenth, gateway.check
        )
        rss["end"] = gateway.rss()["gateway"]
        return rate, rss.get("tenth", 0.0), rss["end"]
    finally:
        gateway.stop_all()
        ledger.close()


async def run(
    n: int, store: str | None, processes: int | None = None, partitions: int = PARTITIONS
) -> Figures:

    configure_logging("console", "warning")
    processes = processes or os.cpu_count() or 1
    private = Ed25519PrivateKey.generate()
    public = public_key_bytes(private)
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    record = KeyRecord("verra", make_key_id("verra", public, start), public, start)
    signers = {"verra": EventSigner(default_codec(), record.key_id, private)}
    print(f"generating and signing {n:,} events…", flush=True)
    messages = registry_stream(signers, n, projects=max(n // 200, 10))
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
        await ensure_topics(
            broker.bootstrap_servers, [*topics.all(), topics.raw + ".bare"], partitions
        )
        await produce_all(broker.bootstrap_servers, topics.raw, messages)
        del messages
        print(f"bare loop, {processes} process(es)…", flush=True)
        bare = await bare_loop(
            broker.bootstrap_servers,
            topics.raw,
            topics.raw + ".bare",
            n,
            record,
            processes,
            partitions,
        )
        ledger = (store or "sqlite").split("://")[0]
        print(f"gateway on {ledger}, {processes} process(es)…", flush=True)
        gateway, rss_tenth, rss_end = await gateway_run(
            broker.bootstrap_servers, topics, n, record, store, processes, Path(tmp)
        )
    return Figures(gateway, bare, n, rss_tenth, rss_end, ledger, processes)


def report(f: Figures) -> str:
    return "\n".join(
        [
            f"gateway benchmark: {f.events:,} events, ledger {f.store}, {os.cpu_count()} cores,"
            f" {f.processes} process(es) each",
            f"  bare loop (consume + decode + verify + produce): {f.bare_rate:>10,.0f} events/s",
            f"  gateway (+ model, ledger checks, outbox, commit): {f.gateway_rate:>9,.0f} events/s",
            f"  gateway / bare: {f.gateway_rate / f.bare_rate:.0%}",
            f"  gateway RSS (all its processes): {f.rss_tenth:.0f} MB at 10 % judged, "
            f"{f.rss_end:.0f} MB at 100 % (growth {f.rss_end - f.rss_tenth:+.0f} MB)",
        ]
    )
