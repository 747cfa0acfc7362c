"""The national-registry adapter end to end on the real broker: signed events through the
gateway, the verified topic into Ghana's and Switzerland's ledgers, actions emitted once;
then replays (over the live store, and into an empty one) change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from adapters.national.consumer import NationalAdapter
from adapters.national.store import NationalStore
from gateway.contract.codec import default_codec
from gateway.contract.itmo_message import decode_action
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner
from gateway.contract.models import RegistryEvent
from gateway.service.ledger.backends import open_ledger
from tests.conftest import RegistryKey
from tests.support.brokers import Broker
from tests.support.harness import Harness, read_to_end
from tests.support.national import NDC_FLOW, REVOKED, STORY, Opener, events


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
    await harness.send(*signed_stream(key))
    await harness.drain()
    yield harness
    await harness.stop()
    ledger.close()


async def run_adapter(harness: Harness, store: NationalStore, expected: int) -> NationalAdapter:
    """Run until the adapter has handled ``expected`` messages and its actions are on the
    broker."""
    adapter = NationalAdapter(
        kafka=harness.broker.bootstrap_servers, store=store, topics=harness.topics
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
