"""The international-registry adapter against the emulator, through the real broker:
faults on a fifth of the calls (lost answers after commit included), SIGKILLs of the
adapter in the middle, and an outage of the registry; the emulator must end holding
exactly the state of every action applied once, in order."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from adapters.international.client import Credentials, RegistryClient
from adapters.international.consumer import InternationalAdapter
from adapters.international.emulator import Emulator, Faults
from adapters.international.emulator.holdings import Refused, Registry
from adapters.international.resilience import Backoff, CircuitBreaker
from adapters.international.store import open_international_store
from gateway.cli.main import main as crg
from gateway.contract.itmo import ActionType, ItmoAction, action_id
from gateway.contract.itmo_message import decode_action
from gateway.keystore import open_key_storage
from gateway.streaming.topics import Topics, ensure_topics
from ops.loadgen_itmo import _action, action_stream, party_keys, signed_actions
from tests.support.brokers import Broker
from tests.support.emulator import serving
from tests.support.harness import read_to_end

REPO = Path(__file__).resolve().parents[2]
TOKEN = f"t-{uuid.uuid4().hex}"
FAULTY = Faults(error_rate=0.08, reset_rate=0.04, drop_after_commit_rate=0.08, seed=5)  # 20 %


def expected(actions: list[ItmoAction]) -> tuple[dict[str, Any], set[str]]:
    """The registry's state after every action applied once, in order; and the refused."""
    registry, refused = Registry(), set()
    for a in actions:
        try:
            registry.apply(a.party, a.action_type.value, a.row())
        except Refused:
            refused.add(a.action_id)
    return registry.state(), refused


#: each Party's key, as its national adapter signs the actions it emits, and the trust
#: store the international adapter checks them with
SIGNERS, PARTY_KEYS = party_keys(["GHA", "CHE", "NOR"])


async def publish(broker: Broker, topics: Topics, actions: list[ItmoAction]) -> None:
    await send(broker, topics, signed_actions(actions, SIGNERS))


async def send(broker: Broker, topics: Topics, messages: list[Any]) -> None:
    # one partition: the registry's checks need the order across Parties too
    await ensure_topics(
        broker.bootstrap_servers, [topics.itmo_actions, topics.itmo_actions_rejected], 1
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=10
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topics.itmo_actions, value, key=key, headers=headers)
            for key, value, headers in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@pytest.fixture
async def registry() -> AsyncIterator[tuple[Emulator, str]]:
    async with serving(TOKEN) as served:
        yield served


async def test_faults_and_an_outage_in_process(
    broker: Broker,
    registry: tuple[Emulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator, url = registry
    topics = Topics(f"intl{uuid.uuid4().hex[:8]}")
    actions = action_stream(600, seed=3)
    want, refused = expected(actions)
    assert refused, "the stream must exercise business rejections"
    await publish(broker, topics, actions)
    store = open_international_store(f"sqlite://{tmp_path / 'intl.sqlite'}")
    emulator.set_faults(FAULTY)
    async with RegistryClient(url, Credentials(token=TOKEN), timeout=2) as client:
        adapter = InternationalAdapter(
            kafka=broker.bootstrap_servers,
            store=store,
            topics=topics,
            client=client,
            keys=PARTY_KEYS,
            backoff=Backoff(base=0.01, cap=0.2),
            breaker=CircuitBreaker(threshold=5, cooldown=0.2, max_cooldown=1.0),
            seed=1,
        )
        await adapter.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while adapter.processed < 300:
                assert loop.time() < deadline
                await adapter.step(timeout_ms=200)
            # the registry goes down: the breaker opens, calls become rare, nothing lost
            emulator.down = True
            before = emulator.requests
            step = asyncio.create_task(adapter.step(timeout_ms=200))
            await asyncio.sleep(3)
            during = emulator.requests - before
            assert not step.done()  # waiting, not dropping
            assert during <= 20, f"{during} calls in 3 s of outage: a busy loop"
            assert adapter.breaker.opened >= 1
            emulator.down = False  # it comes back: the adapter resumes by itself
            await step
            while adapter.processed < len(actions):
                assert loop.time() < deadline
                await adapter.step(timeout_ms=200)
            await adapter.settle_acks()
        finally:
            await adapter.stop()
    state = await await_state(emulator)
    assert state == {**want, "applied": len(actions) - len(refused), "applied_twice": []}
    assert store.counts() == {"recorded": len(actions) - len(refused), "rejected": len(refused)}
    rejected = await read_to_end(broker, topics.itmo_actions_rejected)
    assert {decode_action(r.value).action_id for r in rejected} == refused
    assert {r.headers["crg_registry_error"] for r in rejected} <= {b"already_used", b"unknown_itmo"}
    store.close()
    # operators see them with crg rejected
    assert (
        crg(
            [
                "rejected",
                "actions",
                "--store",
                f"sqlite://{tmp_path / 'intl.sqlite'}",
                "--json",
                "--limit",
                "1000",
            ]
        )
        == 0
    )
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["action_id"] for r in listed} == refused
    assert {r["status"] for r in listed} == {422}


async def test_actions_unsigned_unfit_or_for_another_party_are_refused_before_any_call(
    broker: Broker, registry: tuple[Emulator, str], tmp_path: Path
) -> None:
    """Whoever could write the ITMO-actions topic: an unsigned action, one signed with
    another Party's key, a path-injecting Party code, a tampered quantity or action id
    (signed by the Party all the same), a Party this adapter does not serve, bytes that do
    not decode — none reaches the registry; the fit actions around them are delivered."""
    emulator, url = registry
    topics = Topics(f"intl{uuid.uuid4().hex[:8]}")
    fit = action_stream(6, seed=4)
    assert {a.party for a in fit} <= {"GHA", "CHE"}
    base = fit[0]
    hostile = [
        dataclasses.replace(base, party="../../v1/state?"),
        dataclasses.replace(base, quantity=base.quantity + 1000),
        dataclasses.replace(base, action_id="0" * 32),
        dataclasses.replace(base, vintage=1066),
    ]
    served_elsewhere = dataclasses.replace(
        base,
        party="NOR",
        action_id=action_id(
            base.registry_id, base.event_id, base.action_type, "NOR", base.series, base.unit_first
        ),
    )
    ghana_signs = {party: SIGNERS["GHA"] for party in ("GHA", "../../v1/state?")}
    ((unsigned_key, unsigned_value, unsigned_headers),) = signed_actions([base], SIGNERS)
    unsigned = (unsigned_key, unsigned_value, unsigned_headers[:-2])  # no signature
    swiss_signed = signed_actions([base], {"GHA": SIGNERS["CHE"]})
    messages = [
        *signed_actions(hostile, ghana_signs),
        *signed_actions([served_elsewhere], SIGNERS),
        unsigned,
        *swiss_signed,
        (b"GHA", b"\x00\x01 not avro", unsigned_headers[-2:]),
        *signed_actions(fit, SIGNERS),
    ]
    await send(broker, topics, messages)
    store = open_international_store(f"sqlite://{tmp_path / 'intl.sqlite'}")
    async with RegistryClient(url, Credentials(token=TOKEN), timeout=2) as client:
        adapter = InternationalAdapter(
            kafka=broker.bootstrap_servers,
            store=store,
            topics=topics,
            client=client,
            keys=PARTY_KEYS,
            parties=frozenset({"GHA", "CHE"}),
        )
        await adapter.start()
        try:
            async with asyncio.timeout(60):
                while adapter.processed < len(messages):
                    await adapter.step(timeout_ms=200)
        finally:
            await adapter.stop()
    assert adapter.refused == len(messages) - len(fit)
    assert emulator.requests == len(fit)  # not one call for the others
    assert {r[0] for r in store.records()} == {a.action_id for a in fit}


async def await_state(emulator: Emulator) -> dict[str, Any]:
    return {
        **emulator.registry.state(),
        "applied": len(emulator.applied),
        "applied_twice": sorted(k for k, n in emulator.applied.items() if n > 1),
    }


def answered(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM submitted_actions").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def start_adapter(
    broker: Broker, url: str, store: Path, prefix: str, data: Path
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CRG_TOPIC_PREFIX": prefix,
        "CRG_LOG_FORMAT": "json",
        "CRG_LOG_LEVEL": "warning",
        "CRG_INTERNATIONAL_REGISTRY_TOKEN": TOKEN,
        **broker.env(),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "--data-dir",
            str(data),
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "adapter",
            "international",
            "--registry-url",
            url,
            "--store",
            f"sqlite://{store}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def test_ten_thousand_actions_with_faults_sigkills_and_an_outage(
    broker: Broker, registry: tuple[Emulator, str], tmp_path: Path
) -> None:
    n = int(os.environ.get("CRG_INTL_ACTIONS", "10000"))
    kills = int(os.environ.get("CRG_INTL_KILLS", "3"))
    outage = float(os.environ.get("CRG_OUTAGE_SECONDS", "60"))
    emulator, url = registry
    prefix = f"intl{uuid.uuid4().hex[:8]}"
    actions = action_stream(n)
    want, refused = expected(actions)
    before_outage = n * 7 // 10  # the rest is published during the outage
    await publish(broker, Topics(prefix), actions[:before_outage])
    emulator.set_faults(FAULTY)
    store = tmp_path / "intl.sqlite"
    data = tmp_path / "data"  # the adapter's trust store: the Parties' keys
    open_key_storage(str(data / "keys" / "public-keys.json")).save(list(PARTY_KEYS))
    rng = random.Random(7)
    marks = sorted(rng.sample(range(n // 10, n * 6 // 10), kills))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 900
    process = start_adapter(broker, url, store, prefix, data)
    try:
        for mark in marks:  # SIGKILL at random points, restart at once
            while answered(store) < mark:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert loop.time() < deadline, f"stuck at {answered(store)} of {n}"
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGKILL)
            process.wait()
            process = start_adapter(broker, url, store, prefix, data)
        # an outage: memory stays flat, calls stay rare, and it catches up by itself
        while answered(store) < before_outage:
            assert loop.time() < deadline, f"stuck at {answered(store)} of {n}"
            await asyncio.sleep(0.05)
        emulator.down = True
        await publish(broker, Topics(prefix), actions[before_outage:])
        await asyncio.sleep(min(5.0, outage / 4))
        rss_early, calls_early = rss_mb(process.pid), emulator.requests
        await asyncio.sleep(outage - min(5.0, outage / 4))
        rss_late, calls_during = rss_mb(process.pid), emulator.requests - calls_early
        frozen = answered(store)
        emulator.down = False
        assert rss_late - rss_early < 10, f"RSS {rss_early:.0f} → {rss_late:.0f} MB while down"
        assert calls_during <= outage, f"{calls_during} calls in {outage:.0f} s: a busy loop"
        while answered(store) < n:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert loop.time() < deadline, f"stuck at {answered(store)} of {n}"
            await asyncio.sleep(0.1)
        assert frozen == before_outage  # the outage held every later action back
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0
    state = await await_state(emulator)
    assert state["applied_twice"] == []  # each action applied once, whatever the faults
    assert state == {**want, "applied": n - len(refused), "applied_twice": []}
    db = open_international_store(f"sqlite://{store}")
    assert db.counts() == {"recorded": n - len(refused), "rejected": len(refused)}
    db.close()


async def test_an_acquisition_consumed_before_the_transfer_it_follows_waits_for_it(
    broker: Broker, registry: tuple[Emulator, str], tmp_path: Path
) -> None:
    """Each Party's national adapter emits on its own: Switzerland's acquisitions and
    uses can be on the topic before Ghana's first transfers of the same units — in a
    replay of history at full speed, systematically. They are held, in Switzerland's
    order, until Ghana's are answered, then go; the registry, empty at the start, ends
    exactly as with every action in causal order (the live run), refusing nothing more."""
    emulator, url = registry
    topics = Topics(f"intl{uuid.uuid4().hex[:8]}")
    actions = action_stream(int(os.environ.get("CRG_INTL_CAUSAL_ACTIONS", "10000")), seed=3)
    want, refused = expected(actions)
    swiss = [a for a in actions if a.party == "CHE"]
    assert any(a.action_type.value == "ACQUISITION" for a in swiss)
    await publish(broker, topics, swiss)  # first on the topic, before Ghana's
    store = open_international_store(f"sqlite://{tmp_path / 'intl.sqlite'}")
    async with RegistryClient(url, Credentials(token=TOKEN), timeout=2) as client:
        adapter = InternationalAdapter(
            kafka=broker.bootstrap_servers, store=store, topics=topics, client=client,
            keys=PARTY_KEYS, backoff=Backoff(base=0.01, cap=0.2), seed=1,
        )  # fmt: skip
        await adapter.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 600
            while adapter.processed < len(swiss):
                assert loop.time() < deadline
                await adapter.step(timeout_ms=200)
            assert store.held_count() == len(swiss)  # all wait: each follows Ghana's
            assert emulator.requests == 0
            await publish(broker, topics, [a for a in actions if a.party != "CHE"])
            while sum(store.counts().values()) < len(actions):
                assert loop.time() < deadline, store.counts()
                await adapter.step(timeout_ms=200)
            await adapter.settle_acks()
        finally:
            await adapter.stop()
    assert store.held_count() == 0
    state = await await_state(emulator)
    assert state == {**want, "applied": len(actions) - len(refused), "applied_twice": []}
    assert store.counts() == {"recorded": len(actions) - len(refused), "rejected": len(refused)}
    store.close()


async def test_two_parties_acquiring_from_each_other_in_crossed_order_do_not_hang(
    broker: Broker,
    registry: tuple[Emulator, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Switzerland sends Ghana units X (event 2) while Ghana first-transfers units Y to
    Switzerland (event 3); Ghana's adapter emitted event 2 first, Switzerland's event 3:
    each lane's acquisition waits for a transfer the other lane has behind its own
    acquisition. The round's wait is bounded, both are held, and they go after the hold
    limit (shortened here): nothing hangs, every action is answered, none refused."""
    monkeypatch.setattr("adapters.international.consumer.HOLD_LIMIT", 2.0)
    monkeypatch.setattr("adapters.international.consumer.ROUND_WAIT", 0.2)
    T, FT, ACQ = ActionType.TRANSFER, ActionType.FIRST_TRANSFER, ActionType.ACQUISITION
    ghana = [
        _action(0, ActionType.AUTHORIZATION, "GHA", 0, 99),
        _action(1, FT, "GHA", 0, 49, acquiring_party="CHE"),
        _action(2, ACQ, "GHA", 0, 49, transferring_party="CHE"),
        _action(3, FT, "GHA", 50, 99, acquiring_party="CHE"),
    ]
    swiss = [
        _action(1, ACQ, "CHE", 0, 49, transferring_party="GHA"),
        _action(3, ACQ, "CHE", 50, 99, transferring_party="GHA"),
        _action(2, T, "CHE", 0, 49, acquiring_party="GHA"),
    ]
    topics = Topics(f"intl{uuid.uuid4().hex[:8]}")
    await publish(broker, topics, ghana[:2] + swiss[:1])  # the shared past, in order
    await publish(broker, topics, [ghana[2], swiss[1], ghana[3], swiss[2]])  # crossed
    store = open_international_store(f"sqlite://{tmp_path / 'intl.sqlite'}")
    async with RegistryClient(registry[1], Credentials(token=TOKEN), timeout=2) as client:
        adapter = InternationalAdapter(
            kafka=broker.bootstrap_servers, store=store, topics=topics, client=client,
            keys=PARTY_KEYS, backoff=Backoff(base=0.01, cap=0.2), seed=1,
        )  # fmt: skip
        await adapter.start()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while sum(store.counts().values()) < len(ghana) + len(swiss):
                assert loop.time() < deadline, (store.counts(), store.held_count())
                await adapter.step(timeout_ms=200)
            await adapter.settle_acks()
        finally:
            await adapter.stop()
    assert store.counts() == {"recorded": 7}  # none refused
    assert store.held_count() == 0
    store.close()
