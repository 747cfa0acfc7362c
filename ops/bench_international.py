"""``crg bench international``: ITMO actions/s from the topic into the emulator, without
and with faults, next to the bare rate of the same calls (the client alone, no broker,
no store) in the same run."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiokafka import AIOKafkaProducer

from adapters.international.client import RegistryClient
from adapters.international.consumer import InternationalAdapter
from adapters.international.emulator import Emulator, Faults, make_emulator_app
from adapters.international.resilience import Backoff, CircuitBreaker
from adapters.international.store import open_international_store
from gateway.contract.itmo import ItmoAction
from gateway.logging import configure_logging
from gateway.streaming.local_broker import LocalBroker, free_port
from gateway.streaming.topics import Topics, ensure_topics
from ops.loadgen_itmo import action_stream, party_keys, signed_actions

FAULTS = Faults(error_rate=0.08, reset_rate=0.04, drop_after_commit_rate=0.08, seed=5)


@dataclass
class Run:
    label: str
    rate: float
    calls: int


async def _serve(emulator: Emulator) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_emulator_app(emulator))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def bare(actions: list[ItmoAction]) -> Run:
    runner, url = await _serve(Emulator())
    try:
        async with RegistryClient(url) as client:
            started = time.perf_counter()
            for a in actions:
                await client.submit(a)
            return Run(
                "bare calls (client → emulator, in order)",
                len(actions) / (time.perf_counter() - started),
                len(actions),
            )
    finally:
        await runner.cleanup()


async def adapter(
    broker: LocalBroker, actions: list[ItmoAction], faults: Faults, label: str
) -> Run:
    emulator = Emulator(faults=faults)
    runner, url = await _serve(emulator)
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
    await ensure_topics(
        broker.bootstrap_servers, [topics.itmo_actions, topics.itmo_actions_rejected], 1
    )
    signers, trust = party_keys(sorted({a.party for a in actions}))
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=10)
    await producer.start()
    futures = [
        await producer.send(topics.itmo_actions, value, key=key, headers=headers)
        for key, value, headers in signed_actions(actions, signers)
    ]
    await asyncio.gather(*futures)
    await producer.stop()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_international_store(f"sqlite://{Path(tmp) / 'intl.sqlite'}")
        try:
            async with RegistryClient(url, timeout=2) as client:
                process = InternationalAdapter(
                    kafka=broker.bootstrap_servers,
                    store=store,
                    topics=topics,
                    client=client,
                    keys=trust,
                    backoff=Backoff(base=0.005, cap=0.1),
                    breaker=CircuitBreaker(threshold=20, cooldown=0.05, max_cooldown=0.5),
                )
                await process.start()
                try:
                    first, started = 0, 0.0
                    while process.processed < len(actions):
                        await process.step(timeout_ms=200)
                        if process.processed and not started:  # batch one has start-up in it
                            started, first = time.perf_counter(), process.processed
                    rate = (len(actions) - first) / (time.perf_counter() - started)
                finally:
                    await process.stop()
            assert sorted(emulator.applied.values()) == [1] * len(emulator.applied)
            return Run(label, rate, process.calls)
        finally:
            store.close()
            await runner.cleanup()


async def run(n: int) -> list[Run]:

    configure_logging("console", "error")
    actions = action_stream(n)
    runs = [await bare(actions)]
    with LocalBroker() as broker:
        runs.append(await adapter(broker, actions, Faults(), "adapter, no faults"))
        runs.append(
            await adapter(
                broker,
                actions,
                FAULTS,
                "adapter, 20 % faults (8 % 503/429, 4 % resets, 8 % lost answers)",
            )
        )
    return runs


def report(n: int, runs: list[Run]) -> str:
    lines = [f"international-registry benchmark: {n:,} actions, emulator on 127.0.0.1"]
    for r in runs:
        lines.append(f"  {r.label:<68} {r.rate:>8,.0f} actions/s  ({r.calls:,} calls)")
    lines.append(
        f"  adapter / bare: {runs[1].rate / runs[0].rate:.0%} without faults, "
        f"{runs[2].rate / runs[0].rate:.0%} with"
    )
    return "\n".join(lines)
