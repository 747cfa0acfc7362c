"""One contract for the ledger database: SQLite and PostgreSQL pass the very same tests."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRecord, KeyRing, make_key_id, public_key_bytes
from gateway.contract.message import EventSigner, verify_and_decode
from gateway.contract.models import RegistryEvent
from gateway.service.ledger.blocks import Block, Status
from gateway.service.ledger.rules import Change
from gateway.service.ledger.sequences import Mark
from gateway.service.ledger.store import LedgerStore, open_ledger
from gateway.service.verdict import judge_authentic, read_ahead
from gateway.streaming.process import Incoming
from ops.loadgen import T0, mixed_stream


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'ledger.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    store = open_ledger(url)
    yield store
    store.close()


def blk(start: int, end: int, **kw: object) -> Block:
    fields: dict[str, object] = dict(
        registry_id="verra",
        series="",
        start=start,
        end=end,
        project_id="4150",
        host_party="RWA",
        vintage=2024,
        unit_type="VCU",
        account="a",
        status=Status.ACTIVE,
        labels=(),
        issued_by="e1",
    )
    fields.update(kw)
    return Block(**fields)  # type: ignore[arg-type]


def test_overlapping_finds_exactly_the_touching_blocks(ledger: LedgerStore) -> None:
    blocks = [blk(1, 10), blk(11, 20), blk(30, 40), blk(1, 5, series="other")]
    with ledger.transaction():
        ledger.apply(Change((), tuple(blocks)))
    starts = lambda s, e: [b.start for b in ledger.overlapping("verra", "", s, e)]  # noqa: E731
    assert starts(5, 12) == [1, 11]
    assert starts(10, 10) == [1]
    assert starts(21, 29) == []
    assert starts(0, 100) == [1, 11, 30]
    assert starts(40, 41) == [30]
    assert ledger.overlapping("gold", "", 0, 100) == []
    assert [b.series for b in ledger.overlapping("verra", "other", 0, 100)] == ["other"]


def test_split_replaces_and_round_trips_every_field(ledger: LedgerStore) -> None:
    original = blk(1, 100, labels=('{"kind":"OTHER","text":"x"}',))
    with ledger.transaction():
        ledger.apply(Change((), (original,)))
    pieces = (
        original.piece(1, 9),
        original.piece(10, 19)._replace(account="b", status=Status.RETIRED),
        original.piece(20, 100),
    )
    with ledger.transaction():
        ledger.apply(Change((original,), pieces))
    assert ledger.blocks() == list(pieces)


def test_a_failed_transaction_changes_nothing(ledger: LedgerStore) -> None:
    with ledger.transaction():
        ledger.apply(Change((), (blk(1, 10),)))
    before = ledger.digest()
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.apply(Change((blk(1, 10),), (blk(1, 5), blk(6, 10, account="b"))))
        ledger.set_offsets("raw", {0: 99})
        ledger.outbox_add(0, 3, "t", b"k", b"v", [("h", b"1")])
        raise RuntimeError("crash")
    assert ledger.digest() == before
    assert ledger.offsets("raw") == {}
    assert ledger.outbox_pending() == []


def test_accepted_ids_and_sequences_are_unique(ledger: LedgerStore) -> None:
    with ledger.transaction():
        p1 = ledger.record_accepted("verra", "e1", b"h" * 32, 1, "raw/0/0")
        p2 = ledger.record_accepted("verra", "e2", b"i" * 32, 2, "raw/0/1")
        ledger.record_accepted("gold", "e1", b"j" * 32, 1, "raw/1/0")
    assert p2 > p1
    assert ledger.identity_clash("verra", "e1", 7) == ((b"h" * 32, p1), None)
    assert ledger.identity_clash("verra", "e3", 2) == (None, "e2")
    assert ledger.identity_clash("verra", "e1", 2) == ((b"h" * 32, p1), "e2")
    assert ledger.identity_clash("verra", "e3", 3) == (None, None)
    assert ledger.identity_clash("gold", "e2", 2) == (None, None)
    assert ledger.accepted_count() == 3
    with pytest.raises(Exception), ledger.transaction():  # noqa: B017 - driver-specific error
        ledger.record_accepted("verra", "e1", b"x" * 32, 9, "raw/0/2")


def test_offsets_outbox_and_sequence_state(ledger: LedgerStore) -> None:
    with ledger.transaction():
        ledger.set_offsets("raw", {0: 5, 1: 7})
        ledger.set_offsets("raw", {1: 9})
        ledger.outbox_add(0, 3, "verified", b"k", b"v1", [("a", b"\x00\xff")])
        ledger.outbox_add(1, 8, "rejected", None, b"v2", [])
        ledger.outbox_add(0, 4, "verified", None, b"v3", [])
        ledger.outbox_add(0, 4, "alerts", None, b"v4", [])  # a second message of offset 4
        ledger.set_sequence_checked("verra", 10)
        assert ledger.sequence_checked("verra") == 10  # seen inside the transaction
    written = ledger.last_outbox
    assert [(m.source_partition, m.source_offset, m.seq, m.topic, m.value) for m in written] == [
        (0, 3, 0, "verified", b"v1"),
        (1, 8, 0, "rejected", b"v2"),
        (0, 4, 0, "verified", b"v3"),
        (0, 4, 1, "alerts", b"v4"),
    ]
    assert ledger.offsets("raw") == {0: 5, 1: 9}
    assert ledger.sequence_checked("verra") == 10 and ledger.sequence_checked("gold") is None
    pending = ledger.outbox_pending()  # in causal order per raw partition
    assert [m.value for m in pending] == [b"v1", b"v3", b"v4", b"v2"]
    assert sorted(pending, key=lambda m: m.value) == sorted(written, key=lambda m: m.value)
    assert pending[0].key == b"k" and pending[0].headers == [("a", b"\x00\xff")]
    assert [m.value for m in ledger.outbox_pending([1])] == [b"v2"]
    assert ledger.outbox_pending([]) == []
    ledger.outbox_done({0: 3})  # acknowledged through offset 3 of partition 0
    assert [m.value for m in ledger.outbox_pending()] == [b"v3", b"v4", b"v2"]
    with ledger.transaction():
        ledger.outbox_done({0: 4, 1: 7})
    assert [m.value for m in ledger.outbox_pending()] == [b"v2"]
    ledger.outbox_done({1: 8})
    assert ledger.outbox_pending() == []


def test_stored_sequence_marks_are_never_lowered(ledger: LedgerStore) -> None:
    """The checked mark and each partition's mark only go up: a write of a lower one
    (a member that read before another raised it) leaves the stored one."""
    with ledger.transaction():
        ledger.set_sequence_checked("verra", 10)
        ledger.set_sequence_marks("verra", [Mark(0, 10, 100.0), Mark(2, 8, 90.0)])
    with ledger.transaction():
        ledger.set_sequence_checked("verra", 7)
        ledger.set_sequence_checked("gold", 3)
        ledger.set_sequence_marks("verra", [Mark(0, 9, 95.0), Mark(1, 4, 99.0), Mark(2, 12, 120.0)])
    assert ledger.sequence_checked("verra") == 10 and ledger.sequence_checked("gold") == 3
    assert ledger.sequence_marks("verra") == [
        Mark(0, 10, 100.0),
        Mark(1, 4, 99.0),
        Mark(2, 12, 120.0),
    ]
    assert ledger.sequence_marks("gold") == []
    with ledger.transaction():
        ledger.set_sequence_checked("verra", 12)
    assert ledger.sequence_checked("verra") == 12


def test_sequences_seen_are_accepted_and_refused_numbers_above_the_checked_mark(
    ledger: LedgerStore,
) -> None:
    with ledger.transaction():
        for n in (3, 4, 7):
            ledger.record_accepted("verra", f"e{n}", bytes(32), n, f"raw/0/{n}")
        ledger.record_accepted("gold", "g5", bytes(32), 5, "raw/1/0")
        ledger.record_refused_sequence("verra", 5)
        ledger.record_accepted("verra", "e9", bytes(32), 9, "raw/0/9")
        # inside the transaction: what it queued counts
        assert ledger.sequences_seen("verra", 2, 8) == {3, 4, 5, 7}
        ledger.set_sequence_checked("verra", 4)
    assert ledger.sequences_seen("verra", 0, 100) == {3, 4, 5, 7, 9}
    assert ledger.sequences_seen("verra", 4, 8) == {5, 7}
    assert ledger.sequences_seen("gold", 0, 100) == {5}
    with ledger.transaction():
        ledger.record_refused_sequence("verra", 11)
        ledger.set_sequence_checked("verra", 8)  # settles the refused 5
    assert ledger.sequences_seen("verra", 0, 100) == {3, 4, 7, 9, 11}


def test_queued_writes_need_a_transaction(ledger: LedgerStore) -> None:
    with pytest.raises(RuntimeError):
        ledger.outbox_add(0, 0, "t", None, b"v", [])
    with pytest.raises(RuntimeError):
        ledger.set_sequence_checked("verra", 1)
    with pytest.raises(RuntimeError):
        ledger.set_sequence_marks("verra", [Mark(0, 1, 0.0)])
    with pytest.raises(RuntimeError):
        ledger.record_refused_sequence("verra", 1)


def test_rejected_records_filter_and_reprocess(ledger: LedgerStore) -> None:
    with ledger.transaction():
        for i, (registry, reason, at) in enumerate(
            [
                ("verra", "key_unknown", "2026-01-01T00:00:00Z"),
                ("verra", "units_not_found", "2026-02-01T00:00:00Z"),
                (None, "undecodable.bad_marker", "2026-03-01T00:00:00Z"),
            ]
        ):
            ledger.record_rejected(
                registry_id=registry,
                event_id=f"e{i}",
                reason=reason,
                message="m",
                value=bytes([i]),
                headers=[("h", b"x")],
                source=f"raw/0/{i}",
                received_at=at,
            )
    assert [r.reason for r in ledger.rejected(registry_id="verra")] == [
        "key_unknown",
        "units_not_found",
    ]
    assert [r.event_id for r in ledger.rejected(since="2026-01-15T00:00:00Z")] == ["e1", "e2"]
    assert [r.event_id for r in ledger.rejected(until="2026-01-15T00:00:00Z")] == ["e0"]
    (first,) = ledger.rejected(reason="key_unknown")
    assert (first.value, first.headers) == (b"\x00", [("h", b"x")])
    with ledger.transaction():
        ledger.mark_reprocessed(first.id, "2026-04-01T00:00:00Z")
    assert [r.event_id for r in ledger.rejected()] == ["e1", "e2"]
    assert len(ledger.rejected(include_reprocessed=True)) == 3
    assert ledger.rejected_by_id(first.id).reprocessed_at == "2026-04-01T00:00:00Z"  # type: ignore[union-attr]
    assert ledger.rejected_by_id(10_000) is None
    ledger.record_rejected(  # outside a transaction: written at once
        registry_id="gold",
        event_id="e9",
        reason="key_unknown",
        message="m",
        value=b"",
        headers=[],
        source="http",
        received_at="2026-05-01T00:00:00Z",
    )
    assert [r.event_id for r in ledger.rejected(registry_id="gold")] == ["e9"]


def test_digest_depends_on_every_block_field(ledger: LedgerStore) -> None:
    with ledger.transaction():
        ledger.apply(Change((), (blk(1, 10),)))
    d1 = ledger.digest()
    with ledger.transaction():
        ledger.apply(Change((blk(1, 10),), (blk(1, 10, account="b"),)))
    assert ledger.digest() != d1


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'l.sqlite'}"
    first = open_ledger(url)
    with first.transaction():
        first.apply(Change((), (blk(1, 10),)))
        first.set_offsets("raw", {0: 3})
    digest = first.digest()
    first.close()
    again = open_ledger(url)
    assert (again.digest(), again.offsets("raw")) == (digest, {0: 3})


def test_postgresql_itself_refuses_overlapping_blocks(pg_url: str) -> None:
    ledger = open_ledger(pg_url)
    with ledger.transaction():
        ledger.apply(Change((), (blk(1, 10),)))
    with pytest.raises(Exception, match="blocks_never_overlap"), ledger.transaction():
        ledger.apply(Change((), (blk(5, 20, issued_by="e2"),)))
    assert [b.start for b in ledger.blocks()] == [1]
    ledger.close()


def test_outbox_numbers_each_consumed_message_s_messages_even_interleaved(
    ledger: LedgerStore,
) -> None:
    with ledger.transaction():
        ledger.outbox_add(0, 3, "verified", None, b"a", [])
        ledger.outbox_add(1, 8, "rejected", None, b"b", [])
        ledger.outbox_add(0, 3, "alerts", None, b"c", [])  # offset 3 again, after another
    assert [(m.source_partition, m.source_offset, m.seq) for m in ledger.last_outbox] == [
        (0, 3, 0),
        (1, 8, 0),
        (0, 3, 1),
    ]
    assert [m.value for m in ledger.outbox_pending([0])] == [b"a", b"c"]


def _judged_stream(
    ledger: LedgerStore, batches: list[list[tuple[Incoming, RegistryEvent]]], ahead: float
) -> list[tuple[str, str | None, int | None]]:
    """Judge each batch in one transaction, reading ahead a share ``ahead`` of it."""
    out = []
    for batch in batches:
        with ledger.transaction():
            read_ahead([e for _, e in batch[: int(len(batch) * ahead)]], ledger)
            for msg, event in batch:
                v = judge_authentic(msg, event, ledger)
                out.append((v.outcome, v.reason.value if v.reason else None, v.position))
    return out


def test_judging_set_wise_equals_judging_one_event_at_a_time(
    ledger: LedgerStore, tmp_path: Path
) -> None:
    """Blocks, ids and identities read ahead for a batch, judged in memory and written
    at commit give exactly the verdicts, positions and ledger of one event per
    transaction, whatever share of the batch was read ahead — with events touching the
    same blocks within and across batches, and identical repeats."""
    private = Ed25519PrivateKey.generate()
    public = public_key_bytes(private)
    record = KeyRecord("verra", make_key_id("verra", public, T0), public, T0)
    ring, codec = KeyRing([record]), default_codec()
    signed = mixed_stream({"verra": EventSigner(codec, record.key_id, private)}, 600, projects=4)
    rng = random.Random(3)
    for i in rng.sample(range(len(signed)), 40):  # identical repeats, near and far
        signed.insert(min(i + rng.randrange(1, 300), len(signed)), signed[i])
    stream = [
        (
            Incoming(m.value, list(m.headers), m.key, f"raw/0/{i}", 0, i),
            verify_and_decode(m.value, m.headers, ring, codec),
        )
        for i, m in enumerate(signed)
    ]
    one_by_one = open_ledger(f"sqlite://{tmp_path / 'one.sqlite'}")
    expected = _judged_stream(one_by_one, [[item] for item in stream], ahead=0)
    cuts = sorted(rng.sample(range(1, len(stream)), 12))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    got = _judged_stream(ledger, batches, ahead=0.7)
    assert [v[:2] for v in got] == [v[:2] for v in expected]
    outcomes = {v[0] for v in got}
    assert {"accepted", "rejected", "repeat"} <= outcomes
    accepted = [p for o, _, p in got if o == "accepted"]
    assert accepted == sorted(accepted) and len(set(accepted)) == len(accepted)
    repeats = [p for o, _, p in got if o == "repeat"]
    assert set(repeats) <= set(accepted)  # a repeat names the original's position
    assert ledger.blocks() == one_by_one.blocks()
    assert ledger.accepted_count() == len(accepted)
    one_by_one.close()
