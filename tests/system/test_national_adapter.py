"""The national-registry adapter end to end on the real broker: signed events through the
gateway, the verified topic into Ghana's and Switzerland's ledgers, actions emitted once;
then replays (over the live store, and into an empty one) change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from adapters.national.consumer import NationalAdapter
from adapters.national.store import NationalStore
from gateway.contract.attestation import Attester, Claim
from gateway.contract.codec import default_codec
from gateway.contract.itmo_message import decode_action
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner
from gateway.contract.models import RegistryEvent
from gateway.service.ledger.backends import open_ledger
from ops.loadgen_itmo import party_keys
from ops.processes import trust_store
from tests.conftest import RegistryKey
from tests.support.brokers import Broker
from tests.support.harness import Harness, read_to_end
from tests.support.national import LETTERS, NDC_FLOW, REVOKED, STORY, Opener, events
from tests.system.test_cli import crg
from tests.unit.test_itmo_rules import GHANA_LOA, issue


def signed_stream(key: RegistryKey) -> list[Any]:
    """The three stories, numbered as one registry's sequence and signed."""
    signer = EventSigner(default_codec(), key.key_id, key.private)
    stream = events("GH-1", STORY) + events("GH-2", NDC_FLOW) + events("GH-3", REVOKED)
    return [
        signer.sign_event(RegistryEvent.model_validate({**e.model_dump(), "sequence": n}))
        for n, e in enumerate(stream, 1)
    ]


@pytest.fixture
async def verified(broker: Broker, tmp_path: Path) -> AsyncIterator[Harness]:
    """The stories judged by the gateway: every one accepted onto the verified topic."""
    key = RegistryKey("verra")
    ledger = open_ledger(f"sqlite://{tmp_path / 'ledger.sqlite'}")
    harness = await Harness(broker, ledger, KeyRing([key.record])).start()
    await harness.publish_letters(*LETTERS)  # Ghana's letters confirm the stories' labels
    await harness.send(*signed_stream(key))
    await harness.drain()
    yield harness
    await harness.stop()
    ledger.close()


async def run_adapter(harness: Harness, store: NationalStore, expected: int) -> NationalAdapter:
    """Run until the adapter has handled ``expected`` messages and its actions are on the
    broker."""
    adapter = NationalAdapter(
        kafka=harness.broker.bootstrap_servers,
        store=store,
        topics=harness.topics,
        keys=harness.trust,
        signer=party_keys([store.party])[0][store.party],
    )
    await adapter.start()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while adapter.processed < expected:
            assert asyncio.get_running_loop().time() < deadline, adapter.processed
            await adapter.step(timeout_ms=200)
        await adapter.settle_acks()
    finally:
        await adapter.stop()
    return adapter


async def action_messages(harness: Harness) -> list[tuple[bytes | None, Any]]:
    routed = await read_to_end(harness.broker, harness.topics.itmo_actions)
    return [(r.key, decode_action(r.value)) for r in routed]


async def test_two_parties_then_replays_change_nothing(
    verified: Harness, open_party: Opener
) -> None:
    n = len(await read_to_end(verified.broker, verified.topics.verified))
    assert n == 12  # the gateway accepted every event of the stories
    ghana, switzerland = open_party("GHA", "gha"), open_party("CHE", "che")
    await run_adapter(verified, ghana, n)
    await run_adapter(verified, switzerland, n)

    # in time order: the stories' events fall on the first of February to May
    assert [(a.event_id, a.action_type.value) for a in ghana.actions()] == [
        ("GH-2-e1", "AUTHORIZATION"),  # February: GH-2 issued authorized
        ("GH-1-e2", "AUTHORIZATION"),  # March: GH-1 authorized, first transfer at once
        ("GH-1-e2", "FIRST_TRANSFER"),
        ("GH-3-e2", "AUTHORIZATION"),
        ("GH-1-e3", "TRANSFER"),  # April: GH-1 to Switzerland
        ("GH-2-e3", "FIRST_TRANSFER"),  # GH-2 to Switzerland
        ("GH-3-e3", "LABEL_REVOCATION"),
        ("GH-1-e4", "USE_OIMP"),  # May: CORSIA
    ]
    assert sorted(a.action_type.value for a in switzerland.actions()) == [
        "ACQUISITION", "ACQUISITION", "USE_NDC"
    ]  # fmt: skip

    emitted = await action_messages(verified)
    assert sorted((k, a.action_id) for k, a in emitted) == sorted(
        [(b"GHA", a.action_id) for a in ghana.actions()]
        + [(b"CHE", a.action_id) for a in switzerland.actions()]
    )
    assert {a.action_id: a for _, a in emitted} == {
        a.action_id: a for a in ghana.actions() + switzerland.actions()
    }

    # replay over the live store: rewind to the start, run the whole topic again
    digest, counts = ghana.digest(), ghana.counts()
    with ghana.transaction():
        ghana.set_offsets(verified.topics.verified, dict.fromkeys(range(verified.partitions), 0))
    again = await run_adapter(verified, ghana, n)
    assert again.processed == n
    assert (ghana.digest(), ghana.counts()) == (digest, counts)
    assert len(await action_messages(verified)) == len(emitted)  # nothing emitted again

    # the gateway's identical repeat of a verified event changes nothing either
    first = (await read_to_end(verified.broker, verified.topics.verified))[0]
    producer = AIOKafkaProducer(bootstrap_servers=verified.broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            verified.topics.verified, first.value, key=first.key,
            headers=list(first.headers.items()), partition=first.partition,
        )  # fmt: skip
    finally:
        await producer.stop()
    await run_adapter(verified, ghana, 1)
    assert (ghana.digest(), ghana.counts()) == (digest, counts)

    # replay into an empty store rebuilds the very same ledger
    scratch = open_party("GHA", "scratch")
    await run_adapter(verified, scratch, n + 1)
    assert scratch.digest() == digest
    assert scratch.counts() == counts


async def test_forged_verified_messages_change_nothing_and_raise_alerts(
    verified: Harness, open_party: Opener, tmp_path: Path
) -> None:
    """An attacker who can write the verified topic: an unsigned issuance of a made-up
    registry labelled for Ghana, a genuine event re-signed by an unknown key and given a
    forged attestation, and a genuine verified message replayed at another ledger
    position. Ghana's ledger is exactly as without them, and each is alerted."""
    genuine = await read_to_end(verified.broker, verified.topics.verified)
    ghana = open_party("GHA", "gha")
    await run_adapter(verified, ghana, len(genuine))
    digest, counts = ghana.digest(), ghana.counts()

    (nobody,) = events("GH-1", [issue(7000, 7999, [GHANA_LOA])], registry="nobody")
    value = default_codec().encode(nobody.to_avro())
    intruder = RegistryKey("verra")  # the registry's name, a key nobody registered
    forger = Attester(intruder.key_id, intruder.private)
    (posing,) = events("GH-1", [issue(7000, 7999, [GHANA_LOA])])
    resigned = EventSigner(default_codec(), intruder.key_id, intruder.private).sign_event(posing)
    first = genuine[0]
    moved = [(k, b"999999" if k == "crg_ledger_position" else v) for k, v in first.headers.items()]
    forged = [
        (b"nobody/GH-1", value, [("crg_verdict", b"accepted"), ("crg_ledger_position", b"1")]),
        (
            resigned.key,
            resigned.value,
            [*resigned.headers, ("crg_verdict", b"accepted"), ("crg_ledger_position", b"2"),
             *forger.headers(Claim(resigned.value, "accepted", 2, "verra", "x",
                                   verified.topics.verified, "2026-06-01T00:00:00Z"))],
        ),
        (first.key, first.value, moved),
    ]  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=verified.broker.bootstrap_servers)
    await producer.start()
    try:
        for key, value_, headers in forged:
            await producer.send_and_wait(verified.topics.verified, value_, key=key, headers=headers)
    finally:
        await producer.stop()

    adapter = await run_adapter(verified, ghana, len(forged))
    assert adapter.refused == len(forged)
    assert (ghana.digest(), ghana.counts()) == (digest, counts)
    alerts = [
        json.loads(r.value) for r in await read_to_end(verified.broker, verified.topics.alerts)
    ]
    refused = [a for a in alerts if a["alert"] == "verified_message_refused"]
    assert sorted(a["reason"] for a in refused) == [
        "attestation_invalid", "key_unknown", "signature_missing"
    ]  # fmt: skip
    assert {a["party"] for a in refused} == {"GHA"}

    # any subscriber checks the topic the same way: crg verify
    subscriber = tmp_path / "subscriber"
    trust_store(subscriber, [*verified.keys, verified.identity[1]])
    run = crg(
        subscriber,
        "verify",
        bootstrap=verified.broker.bootstrap_servers,
        env_extra={"CRG_TOPIC_PREFIX": verified.topics.prefix},
    )
    assert run.returncode == 1, run.stderr
    assert f"{len(genuine) + len(forged)} messages; {len(genuine)} hold" in run.stdout
    for reason in ("attestation_invalid", "key_unknown", "signature_missing"):
        assert f"refused 1: {reason}" in run.stdout
