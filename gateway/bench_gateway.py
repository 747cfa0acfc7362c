"""``crg bench gateway``: events/s through verify + ledger checks + produce, next to the
bare loop on the same broker and the same events (consume + decode + verify + produce)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import resource
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .broker.local import LocalBroker
from .broker.produce import produce_all
from .broker.topics import Topics, ensure_topics
from .contract.codec import default_codec
from .contract.keys import KeyRecord, KeyRing, make_key_id, public_key_bytes
from .contract.message import EventSigner, signature_headers
from .ledger.store import open_ledger
from .loadgen import mixed_stream
from .pipeline.gateway import Gateway


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Figures:
    gateway_rate: float
    bare_rate: float
    events: int
    rss_start: float
    rss_tenth: float  # when the gateway had judged 10 % of the events
    rss_end: float
    store: str


async def bare_loop(bootstrap: str, topic: str, out_topic: str, n: int, ring: KeyRing) -> float:
    """The floor: consume, verify (on every core, like the gateway), decode, produce;
    no model, no ledger."""
    codec = default_codec()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await consumer.start()
    await producer.start()
    seen, first, started = 0, 0, 0.0
    workers = os.cpu_count() or 1
    pool = ThreadPoolExecutor(workers)
    loop = asyncio.get_running_loop()

    def check(messages: list[Any]) -> None:
        for m in messages:
            key_id, signature = signature_headers(m.headers)
            ring.verify(key_id, m.value, signature)
            codec.decode(m.value)

    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            fetched = [m for messages in batch.values() for m in messages]
            size = -(-len(fetched) // workers) or 1
            await asyncio.gather(
                *(  # verification releases the GIL: use every core
                    loop.run_in_executor(pool, check, fetched[i : i + size])
                    for i in range(0, len(fetched), size)
                )
            )
            futures = [
                await producer.send(out_topic, m.value, key=m.key, headers=list(m.headers))
                for m in fetched
            ]
            await asyncio.gather(*futures)
            seen += sum(len(v) for v in batch.values())
            if seen and not started:  # like the gateway: timed from the end of batch one
                started, first = time.perf_counter(), seen
        return (n - first) / (time.perf_counter() - started)
    finally:
        pool.shutdown()
        await consumer.stop()
        await producer.stop()


async def gateway_run(
    bootstrap: str, topics: Topics, n: int, ring: KeyRing, ledger_url: str
) -> float:
    ledger = open_ledger(ledger_url)
    gateway = Gateway(
        bootstrap_servers=bootstrap, ledger=ledger, keys=ring, codec=default_codec(), topics=topics
    )
    await gateway.start()
    stop = asyncio.Event()
    serving = asyncio.create_task(gateway.serve(stop))
    first, started, rss_tenth = 0, 0.0, 0.0
    try:
        while gateway.processed < n:
            await asyncio.sleep(0.005)
            if gateway.processed and not started:  # batch one includes fetch start-up
                started, first = time.perf_counter(), gateway.processed
            if not rss_tenth and gateway.processed >= n // 10:
                rss_tenth = rss_mb()
            if serving.done():
                serving.result()  # raises what stopped it
                raise RuntimeError("the gateway stopped before judging every event")
        return (n - first) / (time.perf_counter() - started), rss_tenth
    finally:
        stop.set()
        await serving
        await gateway.stop()
        ledger.close()


async def run(n: int, store: str | None, partitions: int = 4) -> Figures:
    from .logging import configure_logging

    configure_logging("console", "warning")
    private = Ed25519PrivateKey.generate()
    public = public_key_bytes(private)
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    record = KeyRecord("verra", make_key_id("verra", public, start), public, start)
    ring = KeyRing([record])
    signers = {"verra": EventSigner(default_codec(), record.key_id, private)}
    print(f"generating and signing {n:,} events…", flush=True)
    messages = mixed_stream(signers, n, projects=max(n // 200, 10))
    rss_start = rss_mb()
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
        await ensure_topics(
            broker.bootstrap_servers, [*topics.all(), topics.raw + ".bare"], partitions
        )
        await produce_all(broker.bootstrap_servers, topics.raw, messages)
        print("bare loop…", flush=True)
        bare = await bare_loop(broker.bootstrap_servers, topics.raw, topics.raw + ".bare", n, ring)
        ledger_url = store or f"sqlite://{Path(tmp) / 'ledger.sqlite'}"
        print(f"gateway on {ledger_url.split('://')[0]}…", flush=True)
        gateway, rss_tenth = await gateway_run(
            broker.bootstrap_servers, topics, n, ring, ledger_url
        )
    return Figures(gateway, bare, n, rss_start, rss_tenth, rss_mb(), ledger_url.split("://")[0])


def report(f: Figures) -> str:
    return "\n".join(
        [
            f"gateway benchmark: {f.events:,} events, ledger {f.store}, {os.cpu_count()} cores",
            f"  bare loop (consume + decode + verify + produce): {f.bare_rate:>10,.0f} events/s",
            f"  gateway (+ model, ledger checks, outbox, commit): {f.gateway_rate:>9,.0f} events/s",
            f"  gateway / bare: {f.gateway_rate / f.bare_rate:.0%}",
            f"  RSS: {f.rss_start:.0f} MB with the events generated, {f.rss_tenth:.0f} MB at 10 % "
            f"judged, {f.rss_end:.0f} MB at 100 % (growth {f.rss_end - f.rss_tenth:+.0f} MB)",
        ]
    )
