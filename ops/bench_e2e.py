"""``crg bench e2e`` (also ``ops/bench``): the gateway and a national-registry adapter as
separate processes on a fresh local broker, measured end to end next to the bare stack
in the same run.

1. **floor**: the bare loop on the same broker and events (consume, decode, verify on
   every core, produce) — :func:`ops.bench_gateway.bare_loop`;
2. **throughput**: N signed events published as fast as they go; from the first publish
   to the last ITMO record committed (the national store's tracking record of the last
   accepted event); RSS of each process sampled, at 10 % and 100 % of the run, and peak;
3. **latency**: on a broker of its own, a fresh pair of processes, events offered at a
   fixed rate (default 1,000/s, the rate achieved is reported); each event's publish
   time against the time the adapter committed it (``applied_events.applied_at``):
   p50, p99, p99.9; and the latency's floor, on another fresh broker: the same events
   at the same rate through one topic to a plain consumer (the pipeline makes two such
   broker hops);
4. **replay**: the adapter over the whole verified topic again, into an empty store, in
   a process of its own, against the first run's adapter rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.national.consumer import NationalAdapter
from adapters.national.store import open_national_store
from gateway.collector import settle_collector
from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRecord, make_key_id, public_key_bytes
from gateway.contract.message import EventSigner, SignedMessage
from gateway.keystore import open_key_storage
from gateway.logging import configure_logging
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.process import ConsumerProcess
from gateway.streaming.produce import produce_all
from gateway.streaming.topics import Topics, ensure_topics
from ops.bench_gateway import bare_loop, fresh_schema
from ops.loadgen import generated_letters, registry_stream
from ops.loadgen_itmo import party_keys
from ops.processes import (
    Broker,
    Processes,
    broker_env,
    publish_party_letters,
    running_broker,
    trust_store,
)

PARTITIONS = 4
WINDOW = 5.0  # seconds of sending per latency window


@dataclass
class Figures:
    events: int
    store: str
    processes: int = 1  # of the gateway and of the bare loop
    broker: str = "tansu"
    bare_rate: float = 0.0
    e2e_rate: float = 0.0
    accepted: int = 0
    actions: int = 0
    offered_rate: float = 0.0
    achieved_rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    stage_latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    bare_hop_ms: dict[str, float] = field(default_factory=dict)  # one broker hop, no work
    #: p99 of the events sent in each WINDOW seconds, in order: drift as the broker fills
    latency_p99_by_window_ms: list[float] = field(default_factory=list)
    bare_hop_p99_by_window_ms: list[float] = field(default_factory=list)
    bare_hop_events: int = 0
    latency_events: int = 0
    first_adapter_rate: float = 0.0
    replay_rate: float = 0.0
    rss_mb: dict[str, dict[str, float]] = field(default_factory=dict)


def pair_of(
    data: Path, broker: Broker, prefix: str, store: str | None, processes: int = 1
) -> Processes:
    """The gateway and Ghana's national adapter as processes over one data directory."""
    env = {
        **os.environ,
        "CRG_DATA_DIR": str(data),
        "CRG_TOPIC_PREFIX": prefix,
        **broker_env(broker),
        "CRG_LOG_FORMAT": "json",
        "CRG_LOG_LEVEL": "warning",
    }
    if store:  # PostgreSQL: fresh schemas for this pair
        env["CRG_LEDGER_URL"] = fresh_schema(store, f"{prefix}_ledger")
        env["CRG_NATIONAL_STORE_URL"] = fresh_schema(store, f"{prefix}_national_gha")
    return Processes(
        data,
        env,
        {
            "gateway": ["gateway", "--processes", str(processes)],
            "national": ["adapter", "national", "--party", "GHA"],
        },
    )


def _stores(pair: Processes) -> tuple[Any, Any]:

    ledger_url = (
        pair.env.get("CRG_LEDGER_URL") or f"sqlite://{pair.data / 'gateway' / 'ledger.sqlite'}"
    )
    national_url = pair.env.get("CRG_NATIONAL_STORE_URL") or (
        f"sqlite://{pair.data / 'national' / 'GHA.sqlite'}"
    )
    return open_ledger(ledger_url), open_national_store(national_url, "GHA")


async def _until_applied(
    pair: Processes, prefix: str, published: int, on_progress: Any = None, within: float = 900
) -> tuple[int, int]:
    """Wait until the gateway judged everything and the adapter applied every accepted
    event; return (accepted, actions)."""
    topics = Topics(prefix)
    deadline = time.monotonic() + within
    ledger = national = None
    try:
        while time.monotonic() < deadline:
            pair.check()
            if ledger is None and (pair.data / "gateway").exists():
                ledger, national = _stores(pair)
            if ledger is not None and national is not None:
                judged = sum(ledger.offsets(topics.raw).values())
                if on_progress is not None:
                    on_progress(judged)
                # counting rows scans tables: only once the gateway is through, or the
                # polling itself would take CPU from the pipeline it measures
                if judged >= published:
                    accepted = ledger.accepted_count()
                    counts = national.counts()
                    if counts["applied_events"] >= accepted:
                        return accepted, counts["actions"]
            await asyncio.sleep(0.05)
        raise TimeoutError("the pair did not get through in time")
    finally:
        if ledger is not None:
            ledger.close()
        if national is not None:
            national.close()


async def _wait_joined(pair: Processes, seconds: float = 8.0) -> None:
    """Consumer groups on tansu settle in about five seconds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pair.check()
        await asyncio.sleep(0.2)


def _keys(data: Path, record: KeyRecord) -> None:
    """The trust store of a run: the registry's key, and a gateway key to attest with."""
    trust_store(data, [record])


async def _letters(data: Path, broker: Broker, prefix: str) -> None:
    """Ghana's letter that confirms the generated labels, as Ghana would publish it."""
    letters = generated_letters(["verra"])
    await publish_party_letters(data, broker.bootstrap_servers, Topics(prefix), letters)


def signed_events(
    n: int, seed: int = 7, private: Ed25519PrivateKey | None = None
) -> tuple[list[SignedMessage], KeyRecord, Ed25519PrivateKey]:
    private = private or Ed25519PrivateKey.generate()
    since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    record = KeyRecord(
        "verra",
        make_key_id("verra", public_key_bytes(private), since),
        public_key_bytes(private),
        since,
    )
    signer = EventSigner(default_codec(), record.key_id, private)
    return (
        registry_stream({"verra": signer}, n, seed=seed, projects=max(n // 200, 10)),
        record,
        private,
    )


async def throughput(
    broker: Broker,
    messages: list[SignedMessage],
    record: KeyRecord,
    store: str | None,
    f: Figures,
) -> None:
    with tempfile.TemporaryDirectory(prefix="crg-e2e-") as tmp:
        data, prefix = Path(tmp), f"e2e{uuid.uuid4().hex[:6]}"
        _keys(data, record)
        await ensure_topics(broker.bootstrap_servers, Topics(prefix).all(), PARTITIONS)
        await _letters(data, broker, prefix)
        pair = pair_of(data, broker, prefix, store, f.processes)
        pair.start_all()
        try:
            await _wait_joined(pair)
            samples: dict[str, dict[str, float]] = {}

            def progress(judged: int) -> None:
                if "rss_at_10_percent" not in samples and judged >= len(messages) // 10:
                    samples["rss_at_10_percent"] = pair.rss()

            started = time.monotonic()
            publishing = asyncio.create_task(
                produce_all(broker.bootstrap_servers, Topics(prefix).raw, messages)
            )
            f.accepted, f.actions = await _until_applied(pair, prefix, len(messages), progress)
            elapsed = time.monotonic() - started
            await publishing
            f.e2e_rate = len(messages) / elapsed
            f.rss_mb = {
                "at 10 %": samples.get("rss_at_10_percent", {}),
                "at 100 %": pair.rss(),
                "peak": pair.peak(),
            }
        finally:
            pair.stop_all()
        f.first_adapter_rate = f.accepted / elapsed
        f.replay_rate = await replay_rate(broker, prefix, data / "keys" / "public-keys.json")


async def replay_rate(broker: Broker, prefix: str, trust: Path) -> float:
    """The adapter over the whole verified topic again, into an empty store, in a process
    of its own as the adapter runs (``crg adapter national``, ``crg replay``), not in
    this one, which holds every signed event of the run: in a process holding them, the
    same replay ran at 6,672–6,830 events/s against 8,944–9,022/s in a fresh one
    (196,825 events; ``docs/performance.md``)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, _replay_process, broker.bootstrap_servers, prefix, str(trust)
        )


def _replay_process(bootstrap: str, prefix: str, trust: str) -> float:

    configure_logging("console", "warning")
    settle_collector()  # as in the adapter's own process
    return asyncio.run(_replay(bootstrap, prefix, trust))


async def _replay(bootstrap: str, prefix: str, trust: str) -> float:

    with tempfile.TemporaryDirectory(prefix="crg-e2e-replay-") as tmp:
        store = open_national_store(f"sqlite://{Path(tmp) / 'GHA.sqlite'}", "GHA")
        topics = Topics(prefix)
        adapter = NationalAdapter(
            kafka=bootstrap,
            store=store,
            topics=topics,
            outputs=Topics(f"{prefix}.replay"),
            group_id=f"{prefix}.replay",
            keys=open_key_storage(trust).load(),
            signer=party_keys(["GHA"])[0]["GHA"],
        )
        await adapter.start()
        try:
            # timed from the end of the first batch (which waits for the group to form)
            # to the end of the last: 0 when every event came in that first batch
            first, started, ended, idle = 0, 0.0, 0.0, 0
            while idle < 3:
                handled = await adapter.step(timeout_ms=500)
                if handled:
                    ended = time.monotonic()
                    if not started:
                        started, first = ended, adapter.processed
                idle = idle + 1 if not handled and started else 0
            return (adapter.processed - first) / (ended - started) if ended > started else 0.0
        finally:
            await adapter.stop()
            store.close()


async def latency(
    broker: Broker,
    messages: list[SignedMessage],
    record: KeyRecord,
    store: str | None,
    rate: float,
    f: Figures,
) -> None:
    with tempfile.TemporaryDirectory(prefix="crg-e2e-lat-") as tmp:
        data, prefix = Path(tmp), f"lat{uuid.uuid4().hex[:6]}"
        _keys(data, record)
        await ensure_topics(broker.bootstrap_servers, Topics(prefix).all(), PARTITIONS)
        await _letters(data, broker, prefix)
        pair = pair_of(data, broker, prefix, store, f.processes)
        pair.start_all()
        sent_at: dict[str, float] = {}
        codec = default_codec()
        try:
            await _wait_joined(pair)

            def stamp(m: SignedMessage) -> None:
                sent_at[str(codec.decode(m.value)["event_id"])] = time.time()

            f.achieved_rate = await _offer(
                broker.bootstrap_servers, Topics(prefix).raw, messages, rate, stamp
            )
            accepted, _ = await _until_applied(pair, prefix, len(messages))
        finally:
            pair.stop_all()
        _, national = _stores(pair)
        applied = national.applied_times()
        national.close()
        verified = await _verified_times(
            broker.bootstrap_servers, Topics(prefix).verified, accepted
        )
        f.latency_events = len(applied)
        f.offered_rate = rate
        f.latency_ms = _percentiles([applied[e] - sent_at[e] for e in applied if e in sent_at])
        f.latency_p99_by_window_ms = p99_by_window(
            [(sent_at[e], applied[e] - sent_at[e]) for e in applied if e in sent_at]
        )
        f.stage_latency_ms = {
            "publish → verified": _percentiles(
                [verified[e] - sent_at[e] for e in verified if e in sent_at]
            ),
            "verified → ITMO ledger": _percentiles(
                [applied[e] - verified[e] for e in applied if e in verified]
            ),
        }


async def _offer(
    bootstrap: str,
    topic: str,
    messages: list[SignedMessage],
    rate: float,
    stamp: Callable[[SignedMessage], None] | None = None,
) -> float:
    """Publish at a fixed rate as `crg publish` sends (5 ms linger, counted in the
    latency: one request per event would cost the broker more CPU than the gateway
    uses); ``stamp`` runs just before each send. Returns the rate achieved."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        started = time.monotonic()
        for i, m in enumerate(messages):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if stamp is not None:
                stamp(m)
            await producer.send(topic, m.value, key=m.key, headers=list(m.headers))
        await producer.flush()
        return len(messages) / (time.monotonic() - started)
    finally:
        await producer.stop()


async def bare_hop(broker: Broker, messages: list[SignedMessage], rate: float, f: Figures) -> None:
    """The floor of the latency, in the same run: the same events at the same rate
    through one topic to a plain consumer that fetches as the pipeline's consumers do
    (publish → gateway and verified → adapter are two such hops)."""

    topic = f"hop{uuid.uuid4().hex[:6]}"
    await ensure_topics(broker.bootstrap_servers, [topic], PARTITIONS)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=ConsumerProcess.fetch_max_wait_ms,
    )
    await consumer.start()
    waits: list[tuple[float, float]] = []  # (sent, waited) in seconds

    async def consume() -> None:
        while len(waits) < len(messages):
            for batch in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                waits.extend((m.timestamp / 1000, now - m.timestamp / 1000) for m in batch)

    consuming = asyncio.create_task(consume())
    try:
        await _offer(broker.bootstrap_servers, topic, messages, rate)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(consuming), 30)
    finally:
        consuming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consuming
        await consumer.stop()
    f.bare_hop_ms = _percentiles([w for _, w in waits])
    f.bare_hop_p99_by_window_ms = p99_by_window(waits)
    f.bare_hop_events = len(waits)


def p99_by_window(timed: list[tuple[float, float]], window: float = WINDOW) -> list[float]:
    """p99 in ms of the waits of the events sent in each ``window`` seconds from the
    first send, in order, given (sent, waited) pairs in seconds; an empty window (a
    pause in sending) gives NaN, so the positions stay times."""
    if not timed:
        return []
    first = min(sent for sent, _ in timed)
    windows: dict[int, list[float]] = {}
    for sent, waited in timed:
        windows.setdefault(int((sent - first) // window), []).append(waited)
    return [_percentiles(windows.get(i, []))["p99"] for i in range(max(windows) + 1)]


def _percentiles(seconds: list[float]) -> dict[str, float]:
    waits = sorted(s * 1000 for s in seconds)

    def pct(q: float) -> float:
        return waits[min(len(waits) - 1, int(q * len(waits)))] if waits else float("nan")

    return {
        "p50": pct(0.5),
        "p99": pct(0.99),
        "p99.9": pct(0.999),
        "max": waits[-1] if waits else float("nan"),
    }


async def _verified_times(bootstrap: str, topic: str, expected: int) -> dict[str, float]:
    """When the gateway produced each accepted event (the verified message's timestamp,
    by its ``ce_id``): splits the latency into the gateway's part and the adapter's."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    times: dict[str, float] = {}
    deadline = time.monotonic() + 60
    try:
        while len(times) < expected and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for m in messages:
                    event_id = dict(m.headers).get("ce_id", b"").decode()
                    times.setdefault(event_id, m.timestamp / 1000)
    finally:
        await consumer.stop()
    return times


async def run(
    n: int,
    store: str | None,
    rate: float,
    latency_seconds: float,
    processes: int | None = None,
    broker_kind: str = "tansu",
) -> Figures:

    configure_logging("console", "warning")
    f = Figures(
        n, (store or "sqlite").split("://")[0], processes or os.cpu_count() or 1, broker_kind
    )
    print(f"generating and signing {n:,} events…", file=sys.stderr, flush=True)
    messages, record, private = signed_events(n)
    # this process publishes and replays while it holds every signed event of the run:
    # settled like the services' processes, or each collection would walk them all
    settle_collector()
    with running_broker(broker_kind) as broker:
        floor = Topics(f"bare{uuid.uuid4().hex[:6]}")
        await ensure_topics(broker.bootstrap_servers, [floor.raw, floor.raw + ".out"], PARTITIONS)
        await produce_all(broker.bootstrap_servers, floor.raw, messages)
        print(f"bare loop, {f.processes} process(es)…", file=sys.stderr, flush=True)
        f.bare_rate = await bare_loop(
            broker.bootstrap_servers, floor.raw, floor.raw + ".out", n, record, f.processes
        )
        print("gateway + national adapter, end to end…", file=sys.stderr, flush=True)
        await throughput(broker, messages, record, store, f)
    count = min(n, int(rate * latency_seconds))
    print(f"latency at {rate:,.0f} events/s ({count:,} events)…", file=sys.stderr, flush=True)
    fresh, _, _ = signed_events(count, seed=11, private=private)
    # each on a broker of its own: tansu's memory storage delivers more slowly as it fills
    # (one bare hop at 1,000/s: p99 15 ms in the first 5 s, 59 ms after 40 s)
    with running_broker(broker_kind) as broker:
        await bare_hop(broker, fresh, rate, f)
    with running_broker(broker_kind) as broker:
        await latency(broker, fresh, record, store, rate, f)
    return f


def report(f: Figures) -> str:
    rss = f.rss_mb
    lines = [
        f"end-to-end benchmark: {f.events:,} events, broker {f.broker}, stores {f.store},"
        f" {os.cpu_count()} cores,"
        f" gateway and bare loop {f.processes} process(es) each",
        f"  bare loop (consume + decode + verify + produce):   {f.bare_rate:>9,.0f} events/s",
        f"  end to end (publish → last ITMO record committed): {f.e2e_rate:>8,.0f} events/s"
        f"  ({f.accepted:,} accepted, {f.actions:,} ITMO actions)",
        f"  end to end / bare: {f.e2e_rate / f.bare_rate:.0%}",
        f"  latency publish → ITMO ledger at {f.offered_rate:,.0f} events/s offered "
        f"({f.achieved_rate:,.0f}/s achieved, {f.latency_events:,} events): "
        + ", ".join(f"{k} {v:,.0f} ms" for k, v in f.latency_ms.items()),
        *(
            f"    {stage}: " + ", ".join(f"{k} {v:,.0f} ms" for k, v in figures.items())
            for stage, figures in f.stage_latency_ms.items()
        ),
        f"    one bare broker hop (publish → plain consumer, same events and rate, "
        f"{f.bare_hop_events:,} received): "
        + ", ".join(f"{k} {v:,.0f} ms" for k, v in f.bare_hop_ms.items()),
        f"    p99 by {WINDOW:.0f} s of sending, end to end: "
        + ", ".join(f"{v:,.0f}" for v in f.latency_p99_by_window_ms)
        + " ms; one bare hop: "
        + ", ".join(f"{v:,.0f}" for v in f.bare_hop_p99_by_window_ms)
        + " ms",
        f"  adapter: {f.first_adapter_rate:,.0f} accepted events/s in the run, replay "
        + (
            f"{f.replay_rate:,.0f}/s ({f.replay_rate / max(f.first_adapter_rate, 1e-9):.2f}×)"
            if f.replay_rate
            else "not measured (every event came in the first batch: raise -n)"
        ),
    ]
    for name in ("gateway", "national"):
        at10, at100, peak = (rss.get(k, {}).get(name, 0.0) for k in ("at 10 %", "at 100 %", "peak"))
        lines.append(
            f"  RSS {name}: {at10:,.0f} MB at 10 %, {at100:,.0f} MB at 100 % "
            f"(growth {at100 - at10:+,.0f} MB), peak {peak:,.0f} MB"
        )
    return "\n".join(lines)


def as_json(f: Figures) -> str:
    return json.dumps(asdict(f), indent=2, sort_keys=True)
