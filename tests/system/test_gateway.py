"""The gateway against the real broker and both ledgers: every reason code from a crafted
event and nothing else; a realistic mixed stream; resuming from the ledger."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.contract.attestation import verify_verified
from gateway.contract.codec import MARKER, default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import HEADER_KEY_ID, HEADER_SIGNATURE, EventSigner, SignedMessage
from gateway.contract.models import RegistryEvent
from gateway.contract.reasons import CONSUMER_REASONS, Reason
from gateway.contract.signing import encode_signature, sign
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.topics import key_partition, read_to_end
from ops.loadgen import T0 as STREAM_T0
from ops.loadgen import registry_stream
from tests.conftest import RegistryKey
from tests.factories import (
    block,
    envelope,
    issued,
    label_applied,
    label_revoked,
    retired,
    transferred,
)
from tests.support.brokers import Broker
from tests.support.harness import Harness, reason_of

pytestmark = pytest.mark.broker
CODEC = default_codec()
A6 = {
    "kind": "ARTICLE6_AUTHORIZATION",
    "text": "A6 NDC",
    "host_party": "RWA",
    "authorized_uses": [{"purpose": "NDC"}],
}


class Registry:
    """A registry that numbers and signs its events."""

    def __init__(self, key: RegistryKey) -> None:
        self.key = key
        self.signer = EventSigner(CODEC, key.key_id, key.private)
        self.n = 0

    def event(self, payload: dict[str, Any], **kw: Any) -> SignedMessage:
        self.n += 1
        fields = envelope(
            payload, event_id=f"e{self.n}", sequence=self.n, registry_id=self.key.record.registry_id
        )
        fields.update(kw)
        return self.signer.sign_event(RegistryEvent.model_validate(fields))

    def raw(self, value: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Arbitrary bytes, validly signed: gets past the signature check."""
        return (
            b"verra/4150",
            value,
            [
                (HEADER_KEY_ID, self.key.key_id.encode()),
                (HEADER_SIGNATURE, encode_signature(sign(self.key.private, value))),
            ],
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def harness(broker: Broker, ledger_url: str) -> AsyncIterator[Harness]:
    ledger = open_ledger(ledger_url)
    h = await Harness(broker, ledger, KeyRing()).start()
    yield h
    await h.stop()
    ledger.close()


T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def test_every_reason_code_from_a_crafted_event(harness: Harness) -> None:
    verra = Registry(RegistryKey("verra", valid_from=T))
    gold = Registry(RegistryKey("gold-standard", valid_from=T))
    revoked = Registry(
        RegistryKey("verra", valid_from=T, revoked_at=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    )
    expired = Registry(
        RegistryKey("verra", valid_from=T, valid_until=dt.datetime(2026, 2, 1, tzinfo=dt.UTC))
    )
    late = Registry(RegistryKey("verra", valid_from=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)))
    unknown = Registry(RegistryKey("verra", valid_from=T))
    harness.keys = KeyRing([r.key.record for r in (verra, gold, revoked, expired, late)])

    good_issue = verra.event(issued(labels=[]))  # accepted: 1000-1999
    tampered = verra.event(retired())
    tampered = replace(tampered, value=tampered.value[:-1] + bytes([tampered.value[-1] ^ 1]))
    unsigned = verra.event(retired())
    record = RegistryEvent.model_validate(envelope(retired(), event_id="q", sequence=901))
    avro = record.to_avro()
    avro["payload"][1]["quantity"] = 5  # quantity ≠ range size: only the model sees it
    wrong_quantity = CODEC.encode(avro)
    aside = verra.event(retired(), event_id="aside", sequence=950)
    assert aside.key is not None  # sent to a partition its key does not give
    wrong = (key_partition(aside.key, harness.partitions) + 1) % harness.partitions
    crafted: list[tuple[str, Any]] = [
        ("accepted", good_issue),
        ("duplicate_repeat", good_issue),
        ("signature_invalid", tampered),
        ("signature_missing", (unsigned.key, unsigned.value, [])),
        ("key_unknown", unknown.event(retired())),
        ("key_wrong_registry", gold.event(retired(), registry_id="verra")),
        ("key_revoked", revoked.event(retired(), occurred_at="2026-03-01T00:00:00Z")),
        ("key_expired", expired.event(retired(), occurred_at="2026-03-01T00:00:00Z")),
        ("key_not_yet_valid", late.event(retired(), occurred_at="2026-03-01T00:00:00Z")),
        ("undecodable.bad_marker", verra.raw(b'{"json": true}')),
        ("undecodable.truncated", verra.raw(good_issue.value[:30])),
        ("undecodable.unknown_schema", verra.raw(MARKER + b"\x00" * 8 + b"\x02a")),
        ("undecodable.trailing_bytes", verra.raw(good_issue.value + b"\x00")),
        ("undecodable.too_large", verra.raw(MARKER + bytes(70_000))),
        (
            "undecodable.body",
            verra.raw(MARKER + CODEC.current.fingerprint + b"\x02a\x02b\x02c\x02\x00\x7e"),
        ),
        ("model_invalid", verra.raw(wrong_quantity)),
        ("partition_not_of_key", (aside.key, aside.value, list(aside.headers), wrong)),
        ("event_id_conflict", verra.event(issued(labels=[]), event_id="e1")),
        ("sequence_repeat", verra.event(retired(), sequence=1)),
        ("issuance_overlap", verra.event(issued(labels=[], serial_block=block(1500, 2499)))),
        ("units_not_found", verra.event(retired(serial_block=block(5000, 5009), quantity=10))),
        ("project_mismatch", verra.event(retired(), project_id="9999")),
        ("accepted", verra.event(transferred())),  # 1000-1099 → buyer
        ("units_not_held", verra.event(retired(serial_block=block(1000, 1009), quantity=10))),
        ("accepted", verra.event(retired())),  # 1100-1199 retired
        ("units_not_active", verra.event(retired())),  # double use
        ("units_mixed_state", verra.event(retired(serial_block=block(1150, 1249), quantity=100))),
        (
            "label_host_mismatch",  # units 1200-1999: active, of a Rwandan project
            verra.event(
                label_applied(
                    serial_block=block(1200, 1999), quantity=800, label={**A6, "host_party": "GHA"}
                )
            ),
        ),
        ("label_not_present", verra.event(label_revoked(label=A6))),
    ]
    gateway_reasons = {r.value for r in Reason if r not in CONSUMER_REASONS} - {"undecodable"}
    assert {r for r, _ in crafted} - {"accepted"} == gateway_reasons
    # project 9999 is keyed to another partition: partitions are judged in no set order,
    # so it goes once the units it names are on the ledger
    other_partition = [m for r, m in crafted if r == "project_mismatch"]
    await harness.send(*(m for r, m in crafted if r != "project_mismatch"))
    await harness.drain()
    await harness.send(*other_partition)
    await harness.drain()

    rejected = await harness.read(harness.topics.rejected, expected=26)
    verified = await harness.read(harness.topics.verified, expected=3)
    expected_rejections = [r for r, _ in crafted if r not in ("accepted", "duplicate_repeat")]
    assert sorted(reason_of(r) for r in rejected) == sorted(expected_rejections)
    assert len(verified) == 3
    for routed in verified:
        assert routed.headers["crg_verdict"] == b"accepted"
        assert HEADER_SIGNATURE in routed.headers  # original signature travels on
    # each rejected message carries the original bytes unchanged
    by_reason = {reason_of(r): r for r in rejected}
    assert by_reason["signature_invalid"].value == tampered.value
    assert by_reason["units_not_active"].headers["crg_reason_message"].endswith(b"(double use)")
    # and the ledger kept the same story
    assert harness.ledger.accepted_count() == 3
    stored = harness.ledger.rejected(limit=1000)
    assert Counter(r.reason for r in stored) == Counter(expected_rejections)


async def test_forged_verdict_headers_are_stripped(harness: Harness) -> None:
    verra = Registry(RegistryKey("verra", valid_from=T))
    harness.keys = KeyRing([verra.key.record])
    forged = verra.event(retired(serial_block=block(7, 7), quantity=1))
    await harness.send((forged.key, forged.value, [*forged.headers, ("crg_verdict", b"accepted")]))
    await harness.drain()
    (routed,) = await harness.read(harness.topics.rejected, expected=1)
    assert routed.headers["crg_verdict"] == b"rejected"
    assert reason_of(routed) == "units_not_found"

    # an accepted event whose sender wrote an attestation of its own: only the gateway's
    # is on the verified message, and it holds
    issue = verra.event(issued(labels=[]))
    own = [("crg_attestation", b"Zm9yZ2Vk"), ("crg_attestation_key", b"crg:gateway-x"),
           ("crg_attested_at", b"2030-01-01T00:00:00Z")]  # fmt: skip
    await harness.send((issue.key, issue.value, [*issue.headers, *own]))
    await harness.drain()
    (message,) = await read_to_end(harness.broker.bootstrap_servers, harness.topics.verified)
    names = [k for k, _ in message.headers]
    assert names.count("crg_attestation") == names.count("crg_attested_at") == 1
    attested = verify_verified(
        message.value or b"", list(message.headers), harness.topics.verified, harness.trust, CODEC
    )
    assert attested.attested_by == harness.identity[0].key_id


async def test_mixed_stream_ends_in_the_expected_state(harness: Harness) -> None:
    """Issue, transfer part of a block, label, retire part, retire the same units again,
    forge one, replay one."""
    verra = Registry(RegistryKey("verra", valid_from=T))
    harness.keys = KeyRing([verra.key.record])
    issue = verra.event(issued(labels=[]))
    part = verra.event(transferred(serial_block=block(1000, 1299), quantity=300))
    label = verra.event(label_applied(serial_block=block(1000, 1299), quantity=300, label=A6))
    retire = verra.event(retired(serial_block=block(1300, 1399), quantity=100, purpose="OIMP"))
    again = verra.event(retired(serial_block=block(1300, 1399), quantity=100))
    forged_event = verra.event(transferred(serial_block=block(1400, 1999), quantity=600))
    forger = RegistryKey("verra")
    forged = EventSigner(CODEC, verra.key.key_id, forger.private).sign_event(
        RegistryEvent.from_avro(CODEC.decode(forged_event.value))
    )
    await harness.send(issue, part, label, retire, again, forged, issue)
    await harness.drain()

    verified = await harness.read(harness.topics.verified, expected=4)
    rejected = await harness.read(harness.topics.rejected, expected=2)
    assert sorted(r.value for r in verified) == sorted(
        m.value for m in (issue, part, label, retire)
    )
    assert sorted(reason_of(r) for r in rejected) == ["signature_invalid", "units_not_active"]
    layout = [
        (b.start, b.end, b.account, b.status.value, len(b.labels)) for b in harness.ledger.blocks()
    ]
    assert layout == [
        (1000, 1299, "acct-buyer", "active", 1),
        (1300, 1399, "acct-proponent", "retired", 0),
        (1400, 1999, "acct-proponent", "active", 0),
    ]
    # same key for every event on these units: all in one partition, in publish order
    assert len({r.partition for r in verified}) == 1


async def test_restart_resumes_from_the_ledger_not_the_group(
    broker: Broker, tmp_path: Path
) -> None:
    verra = Registry(RegistryKey("verra", valid_from=T))
    ledger = open_ledger(f"sqlite://{tmp_path / 'l.sqlite'}")
    first = await Harness(broker, ledger, KeyRing([verra.key.record])).start()
    await first.send(verra.event(issued(labels=[])), verra.event(transferred()))
    await first.drain()
    await first.stop()
    # a second gateway on the same ledger and topics (as after a restart)
    second = await Harness(broker, ledger, KeyRing([verra.key.record]), topics=first.topics).start()
    await second.send(verra.event(retired()))
    second.sent = 1
    await second.drain()
    await second.stop()
    verified = await second.read(first.topics.verified, expected=3)
    assert len(verified) == 3  # nothing judged twice, nothing skipped
    assert ledger.accepted_count() == 3
    ledger.close()


async def test_alerts_name_double_issuance_across_registries_and_real_gaps(
    harness: Harness,
) -> None:
    """The same project issued by two registries with overlapping vintages raises one
    alert; a sequence number never seen raises one; a number used by an event the
    ledger refused was seen, so it raises none. The partitions that carry no verra
    event stop holding back its check once verra has gone on being read elsewhere: at
    once here, after five minutes by default; so the gap is told with event 6."""
    verra = Registry(RegistryKey("verra", valid_from=T))
    gold = Registry(RegistryKey("gold", valid_from=T))
    harness.keys = KeyRing([verra.key.record, gold.key.record])
    project = {**issued()["project"], "name": "DelAgua Grouped Project", "project_id": "GS-1"}
    await harness.send(
        verra.event(issued(labels=[])),  # 1
        verra.event(retired(serial_block=block(5000, 5009), quantity=10)),  # 2: refused
        verra.event(transferred()),  # 3
    )
    assert harness.gateway is not None
    harness.gateway.quiet_after = 0
    await harness.drain()
    verra.n += 1  # number 4 never arrives
    await harness.send(
        verra.event(retired(serial_block=block(1500, 1509), quantity=10)),  # 5
        gold.event(issued(labels=[], project=project), project_id="GS-1"),
    )
    await harness.drain()
    await harness.send(verra.event(retired(serial_block=block(1600, 1609), quantity=10)))  # 6
    await harness.drain()
    alerts = [
        json.loads(a.value) for a in await harness.read(harness.topics.alerts, expected=3, wait=3)
    ]
    by_kind = {a["alert"]: a for a in alerts}
    assert sorted(by_kind) == ["possible_double_issuance", "sequence_gap"] and len(alerts) == 2
    gap = by_kind["sequence_gap"]
    assert (gap["registry_id"], gap["missing_from"], gap["missing_to"]) == ("verra", 4, 4)
    double = by_kind["possible_double_issuance"]
    assert (double["registry_id"], double["other_registry_id"]) == ("gold", "verra")
    assert (double["project_id"], double["other_project_id"]) == ("GS-1", "4150")


async def test_a_registry_read_across_partitions_raises_no_false_gap_and_every_real_one(
    harness: Harness,
) -> None:
    """A registry's events spread over the partitions by project, read in small batches
    that take each partition at its own pace: numbers still in an unread partition are
    not missing; numbers never sent are, each told once."""
    verra = RegistryKey("verra", valid_from=STREAM_T0)
    harness.keys = KeyRing([verra.record])
    signer = EventSigner(default_codec(), verra.key_id, verra.private)
    stream = registry_stream({"verra": signer}, 1_200, projects=24)
    codec = default_codec()
    skipped = {500, 501, 502, 900}
    kept = [
        m for m in stream if RegistryEvent.from_avro(codec.decode(m.value)).sequence not in skipped
    ]
    assert harness.gateway is not None
    harness.gateway.max_batch = 30
    await harness.send(*kept)
    await harness.drain(wait_seconds=120)
    alerts = [json.loads(a.value) for a in await harness.read(harness.topics.alerts, wait=3)]
    gaps = sorted(
        (a["missing_from"], a["missing_to"]) for a in alerts if a["alert"] == "sequence_gap"
    )
    assert gaps == [(500, 502), (900, 900)]
