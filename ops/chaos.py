"""``crg chaos`` (also ``ops/chaos``): run a stream of events through the whole system —
gateway, national adapters for Ghana and Switzerland, international adapter — as
separate processes on a local broker, while killing (SIGKILL) and restarting random
components and pausing the broker (SIGSTOP / SIGCONT), for a set number of rounds; then
check that every store ends as in an undisturbed run of the same stream. Bounded in
rounds and time, loopback only, stops by itself.

What is compared: the gateway ledger's digest and each national store's digest must be
equal; the international registry must have answered every action exactly once (the
emulator's count of actions applied twice must be zero). Its answers themselves are not
compared: each Party's adapter emits on its own, so whether an acquirer's use reaches the
registry before the transfer it needs depends on timing in any run
(``docs/international-registry.md``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.international.emulator import Emulator, make_emulator_app
from adapters.international.store import open_international_store
from adapters.national.store import open_national_store
from gateway.config import Settings
from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRecord, make_key_id, public_key_bytes
from gateway.contract.message import EventSigner, SignedMessage
from gateway.logging import configure_logging
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.local_broker import free_port
from gateway.streaming.produce import produce_all
from gateway.streaming.topics import Topics, ensure_topics
from gateway.system import Baseline, wait_until_through
from ops.loadgen import generated_letters, mixed_stream
from ops.processes import (
    Broker,
    Processes,
    broker_env,
    publish_party_letters,
    running_broker,
    trust_store,
)

PARTIES = ("GHA", "CHE")
PARTITIONS = 4


@dataclass
class Outcome:
    ledger: str
    nationals: dict[str, str]
    answered: int
    applied_twice: int
    actions: int
    disruptions: list[str] = field(default_factory=list)
    seconds: float = 0.0


def stream(n: int, seed: int) -> tuple[list[SignedMessage], KeyRecord]:
    """The same signed events every time for the same seed (Ed25519 is deterministic)."""

    rng = random.Random(seed)
    private = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    since = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    record = KeyRecord(
        "verra",
        make_key_id("verra", public_key_bytes(private), since),
        public_key_bytes(private),
        since,
    )
    signer = EventSigner(default_codec(), record.key_id, private)
    return mixed_stream({"verra": signer}, n, seed=seed, projects=max(n // 100, 5)), record


#: a disruption for one round (its number), or None; says what it did
Disrupt = Callable[[int, Broker, Processes, random.Random], Awaitable[str | None]]


async def chaos_round(r: int, broker: Broker, parts: Processes, rng: random.Random) -> str:
    """A broker pause (one time in four) or a SIGKILLed component."""
    if rng.random() < 0.25:
        pause = rng.uniform(0.5, 2.0)
        broker.pause()
        await asyncio.sleep(pause)
        broker.resume()
        return f"round {r + 1}: broker paused {pause:.1f} s"
    victim = rng.choice(sorted(parts.commands))
    parts.kill(victim)
    return f"round {r + 1}: SIGKILL {victim}"


def components(data: Path, broker: Broker, prefix: str, registry_url: str) -> Processes:
    """The system's processes for one data directory and topic prefix."""
    env = {
        **os.environ,
        "CRG_DATA_DIR": str(data),
        "CRG_TOPIC_PREFIX": prefix,
        **broker_env(broker),
        "CRG_INTERNATIONAL_REGISTRY_URL": registry_url,
        "CRG_LOG_LEVEL": "warning",
        "CRG_LOG_FORMAT": "json",
        "CRG_GATEWAY_MAX_BATCH": "500",
    }
    commands = {
        "gateway": ["gateway"],
        **{f"national-{p}": ["adapter", "national", "--party", p] for p in PARTIES},
        "international": ["adapter", "international"],
    }
    return Processes(data, env, commands)


async def one_run(
    messages: list[SignedMessage],
    key: KeyRecord,
    rounds: int,
    chaos: bool,
    seed: int,
    within: float,
    broker_kind: str = "tansu",
    *,
    nodes: int = 1,
    disrupt: Disrupt | None = None,
) -> Outcome:
    """The stream published in ``rounds`` parts through every component; with ``chaos``,
    each round ends with a disruption (``disrupt``, by default :func:`chaos_round`)."""

    rng = random.Random(seed)
    started = time.monotonic()
    emulator = Emulator()
    runner = web.AppRunner(make_emulator_app(emulator))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    with (
        tempfile.TemporaryDirectory(prefix="crg-chaos-") as tmp,
        running_broker(broker_kind, nodes) as broker,
    ):
        data = Path(tmp)
        prefix = f"chaos{uuid.uuid4().hex[:6]}"
        trust_store(data, [key])
        topics = Topics(prefix)
        await ensure_topics(broker.bootstrap_servers, topics.all(), PARTITIONS, min(nodes, 3))
        letters = generated_letters([key.registry_id])  # Ghana confirms the labels
        await publish_party_letters(data, broker.bootstrap_servers, topics, letters)
        parts = components(data, broker, prefix, f"http://127.0.0.1:{port}")
        parts.start_all()
        outcome = Outcome("", {}, 0, 0, 0)
        try:
            chunk = -(-len(messages) // max(rounds, 1))
            for r in range(max(rounds, 1)):
                await produce_all(
                    broker.bootstrap_servers, topics.raw, messages[r * chunk : (r + 1) * chunk]
                )
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                parts.check()
                if not chaos:
                    continue
                done = await (disrupt or chaos_round)(r, broker, parts, rng)
                if done is not None:
                    outcome.disruptions.append(done)

            settings = Settings(
                data_dir=data, topic_prefix=prefix, bootstrap_servers=broker.bootstrap_servers
            )
            await wait_until_through(
                settings, list(PARTIES), len(messages), Baseline(0, {}), within, parts.check
            )
        finally:
            parts.stop_all()
            await runner.cleanup()
        outcome.ledger, outcome.nationals = _digests(data, prefix, broker)

        store = open_international_store(f"sqlite://{data / 'international' / 'adapter.sqlite'}")
        outcome.answered = sum(store.counts().values())
        store.close()
        outcome.applied_twice = sum(1 for n in emulator.applied.values() if n > 1)
        outcome.actions = outcome.answered
    outcome.seconds = time.monotonic() - started
    return outcome


def _digests(data: Path, prefix: str, broker: Broker) -> tuple[str, dict[str, str]]:

    ledger = open_ledger(f"sqlite://{data / 'gateway' / 'ledger.sqlite'}")
    digest = ledger.digest()
    ledger.close()
    nationals = {}
    for party in PARTIES:
        store = open_national_store(f"sqlite://{data / 'national' / f'{party}.sqlite'}", party)
        nationals[party] = store.digest()
        store.close()
    return digest, nationals


async def run(
    events: int, rounds: int, seed: int = 1, within: float = 600, broker: str = "tansu"
) -> bool:

    configure_logging("console", "warning")
    messages, key = stream(events, seed)
    print(
        f"chaos on {broker}: {events:,} events, {rounds} rounds; first an undisturbed run…",
        flush=True,
    )
    calm = await one_run(
        messages, key, rounds, chaos=False, seed=seed, within=within, broker_kind=broker
    )
    print(
        f"  undisturbed: {calm.seconds:.0f} s, ledger {calm.ledger[:16]}, "
        + ", ".join(f"{p} {d[:16]}" for p, d in calm.nationals.items())
        + f", {calm.answered} actions answered",
        flush=True,
    )
    print("then the same stream with disruptions…", flush=True)
    wild = await one_run(
        messages, key, rounds, chaos=True, seed=seed + 1, within=within, broker_kind=broker
    )
    for line in wild.disruptions:
        print(f"  {line}")
    print(
        f"  disturbed: {wild.seconds:.0f} s, ledger {wild.ledger[:16]}, "
        + ", ".join(f"{p} {d[:16]}" for p, d in wild.nationals.items())
        + f", {wild.answered} actions answered, {wild.applied_twice} applied twice"
    )
    same = (
        calm.ledger == wild.ledger
        and calm.nationals == wild.nationals
        and calm.answered == wild.answered
        and wild.applied_twice == 0
        and calm.applied_twice == 0
    )
    print(
        "result: "
        + (
            "every store equals the undisturbed run's"
            if same
            else "DIFFERENT from the undisturbed run"
        )
    )
    return same
