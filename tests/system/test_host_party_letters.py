"""Only the host Party authorizes, end to end on a real broker: a registry labels units
for Ghana with no letter of Ghana's published; the national adapter records a claim, no
ITMO action, and alerts Ghana. A forged letter changes nothing and is alerted. Ghana's
own letter, published while the adapter waits for work, makes the claim take effect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.national.consumer import NationalAdapter
from adapters.national.store import NationalStore, Query
from gateway.contract.codec import default_codec
from gateway.contract.itmo_message import PartySigner, party_owner
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner, SignedMessage
from gateway.contract.models import RegistryEvent
from gateway.keystore.private import generate
from gateway.publishing.letters import publish_letters
from gateway.service.ledger.backends import open_ledger
from ops.loadgen_itmo import party_keys
from tests.conftest import T0, RegistryKey
from tests.support.brokers import Broker
from tests.support.harness import Harness, read_to_end
from tests.support.national import STORY, Opener, events, ghana_letter
from tests.unit.test_itmo_rules import GHANA_LOA

LETTER = ghana_letter(GHANA_LOA)


def sign(key: RegistryKey, stream: list[RegistryEvent]) -> list[SignedMessage]:
    signer = EventSigner(default_codec(), key.key_id, key.private)
    return [signer.sign_event(e) for e in stream]


def blocks(store: NationalStore) -> list[tuple[int, int, str]]:
    return sorted((b.unit_first, b.unit_last, b.state) for b in store.itmos(Query(limit=1000)))


@pytest.fixture
async def labelled(broker: Broker, tmp_path: Path) -> AsyncIterator[Harness]:
    """Ghana's story judged by the gateway, and no letter of Ghana's on the topic."""
    key = RegistryKey("verra")
    ledger = open_ledger(f"sqlite://{tmp_path / 'ledger.sqlite'}")
    harness = await Harness(broker, ledger, KeyRing([key.record])).start()
    await harness.send(*sign(key, events("GH-1", STORY)))
    await harness.drain()
    yield harness
    await harness.stop()
    ledger.close()


async def steps_until(adapter: NationalAdapter, done: object, seconds: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not done():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline
        await adapter.step(timeout_ms=200)
    await adapter.settle_acks()


async def alerts(harness: Harness, kind: str) -> list[dict[str, object]]:
    found = [json.loads(r.value) for r in await read_to_end(harness.broker, harness.topics.alerts)]
    return [a for a in found if a["alert"] == kind]


async def test_a_claim_waits_for_ghanas_letter_and_a_forged_letter_changes_nothing(
    labelled: Harness, open_party: Opener
) -> None:
    ghana: NationalStore = open_party("GHA", "gha")
    ghana_key = generate(party_owner("GHA"), T0)
    trust = KeyRing([*labelled.trust, ghana_key[1]])
    adapter = NationalAdapter(
        kafka=labelled.broker.bootstrap_servers,
        store=ghana,
        topics=labelled.topics,
        keys=trust,
        signer=party_keys(["GHA"])[0]["GHA"],
    )
    await adapter.start()
    try:
        await steps_until(adapter, lambda: adapter.processed >= len(STORY))
        # labelled, moved to Switzerland, partly retired: a claim, no ITMO action at all
        assert ghana.actions() == []
        assert blocks(ghana) == [(1000, 1399, "CLAIMED"), (1400, 1499, "LAPSED"),
                          (1500, 1999, "CLAIMED")]  # fmt: skip
        (claimed,) = await alerts(labelled, "authorization_unconfirmed")
        assert claimed["event_id"] == "GH-1-e2" and claimed["units"] == 1000
        assert claimed["claims"][0]["reason"] == "authorization_unknown"  # type: ignore[index]

        # the same letter signed by a key Ghana never registered: refused, alerted
        intruder = RegistryKey(party_owner("GHA"))
        forged = [(LETTER, PartySigner("GHA", intruder.key_id, intruder.private))]
        topic = labelled.topics.authorizations
        await publish_letters(labelled.broker.bootstrap_servers, topic, forged)
        await steps_until(adapter, lambda: adapter.feed is not None and adapter.feed.refused)
        await steps_until(adapter, lambda: adapter._refusals_alerted == 1)
        assert ghana.actions() == []
        (refused,) = await alerts(labelled, "authorization_refused")
        assert refused["reason"] == "key_unknown"

        # Ghana's own letter, while no verified message comes: the claim takes effect
        signer = PartySigner("GHA", ghana_key[1].key_id, ghana_key[0])
        await publish_letters(labelled.broker.bootstrap_servers, topic, [(LETTER, signer)])
        await steps_until(adapter, lambda: len(ghana.actions()) > 0)
    finally:
        await adapter.stop()

    event = f"letter:GHA/{LETTER.letter_of_authorization}/v1"
    assert [(a.event_id, a.action_type.value, a.unit_first, a.unit_last, a.acquiring_party)
            for a in ghana.actions()] == [
        (event, "AUTHORIZATION", 1000, 1399, None),
        (event, "FIRST_TRANSFER", 1000, 1399, None),
        (event, "TRANSFER", 1000, 1399, "CHE"),
        (event, "AUTHORIZATION", 1500, 1999, None),
        (event, "FIRST_TRANSFER", 1500, 1999, None),
    ]  # fmt: skip
    emitted = await read_to_end(labelled.broker, labelled.topics.itmo_actions)
    assert len(emitted) == 5
    assert blocks(ghana) == [(1000, 1399, "FIRST_TRANSFERRED"), (1400, 1499, "LAPSED"),
                             (1500, 1999, "FIRST_TRANSFERRED")]  # fmt: skip
