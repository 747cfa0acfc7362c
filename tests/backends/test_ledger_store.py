"""One contract for the ledger: the judge's snapshot reader and recorder on SQLite,
PostgreSQL and in memory pass the very same tests; the SQL stores' own parts (offsets,
outbox, rejected events, reopening) run on both databases."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRecord, KeyRing, make_key_id, public_key_bytes
from gateway.contract.message import EventSigner, verify_and_decode
from gateway.contract.models import RegistryEvent
from gateway.ranges import Range, block_key
from gateway.service.judge import Asked, Item, Outcome, Rejected, Snapshot, ask, judge
from gateway.service.ledger.backends import open_ledger
from gateway.service.ledger.blocks import Block, Status
from gateway.service.ledger.memory import MemoryLedger
from gateway.service.ledger.sequences import Mark, SequencesRead, Window
from gateway.service.ledger.store import LedgerStore
from gateway.streaming.process import Incoming
from gateway.streaming.topics import Topics
from ops.loadgen import T0, mixed_stream
from tests.factories import block, envelope, issued, label_applied, retired, transferred

TOPICS = Topics()
LABEL = {
    "kind": "ARTICLE6_AUTHORIZATION",
    "text": "A6 NDC",
    "authorized_uses": [{"purpose": "NDC"}],
    "letter_of_authorization": "LoA-1",
}


class Ledger(Protocol):
    """The port every backend serves the judge through."""

    def transaction(self) -> object: ...
    def snapshot(self, asked: Asked) -> Snapshot: ...
    def record(self, outcome: Outcome) -> None: ...
    def blocks(self) -> list[Block]: ...
    def digest(self) -> str: ...
    def accepted_count(self) -> int: ...
    def sequence_checked(self, registry_id: str) -> int | None: ...
    def sequence_marks(self, registry_id: str) -> list[Mark]: ...
    def sequences_seen(self, registry_id: str, after: int, through: int) -> set[int]: ...


def _open(kind: str, request: pytest.FixtureRequest, path: Path) -> LedgerStore:
    url = f"sqlite://{path}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    return open_ledger(url)


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "memory":
        yield MemoryLedger()
        return
    store = _open(request.param, request, tmp_path / "ledger.sqlite")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerStore]:
    opened = _open(request.param, request, tmp_path / "ledger.sqlite")
    yield opened
    opened.close()


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


def asked(
    ranges: Sequence[Range] = (),
    identities: Sequence[tuple[str, str, int]] = (),
    project_identities: Sequence[str] = (),
    numbers: Sequence[tuple[str, int, int]] = (),  # (registry, partition, number) read
    now: float = 0.0,
) -> Asked:
    read = SequencesRead(now)
    for registry, partition, n in numbers:
        read.add(registry, partition, n)
    return Asked(tuple(ranges), tuple(identities), tuple(project_identities), read, (), 1e9, now)


def write(ledger: Ledger, outcome: Outcome) -> None:
    with ledger.transaction():  # type: ignore[attr-defined]
        ledger.record(outcome)


def read(ledger: Ledger, a: Asked) -> Snapshot:
    with ledger.transaction():  # type: ignore[attr-defined]
        return ledger.snapshot(a)


def test_the_snapshot_holds_exactly_the_blocks_touching_the_asked_ranges(ledger: Ledger) -> None:
    write(ledger, Outcome(added=[blk(1, 10), blk(11, 20), blk(30, 40), blk(1, 5, series="o")]))

    def starts(*ranges: Range) -> list[tuple[str, int]]:
        return sorted({(b.series, b.start) for b in read(ledger, asked(ranges)).blocks})

    assert starts(("verra", "", 5, 12)) == [("", 1), ("", 11)]
    assert starts(("verra", "", 10, 10)) == [("", 1)]
    assert starts(("verra", "", 21, 29)) == []
    assert starts(("verra", "", 0, 100)) == [("", 1), ("", 11), ("", 30)]
    assert starts(("verra", "", 40, 41), ("verra", "o", 0, 100)) == [("", 30), ("o", 1)]
    assert starts(("gold", "", 0, 100)) == []


def test_split_replaces_and_round_trips_every_field(ledger: Ledger) -> None:
    original = blk(1, 100, labels=('{"kind":"OTHER","text":"x"}',))
    write(ledger, Outcome(added=[original]))
    pieces = [
        original.piece(1, 9),
        original.piece(10, 19)._replace(account="b", status=Status.RETIRED),
        original.piece(20, 100),
    ]
    write(ledger, Outcome(deleted=[block_key(original)], added=pieces))
    assert ledger.blocks() == pieces


def test_a_failed_transaction_changes_nothing(ledger: Ledger) -> None:
    write(ledger, Outcome(added=[blk(1, 10)]))
    before = ledger.digest()
    with pytest.raises(RuntimeError), ledger.transaction():  # type: ignore[attr-defined]
        ledger.record(Outcome(deleted=[block_key(blk(1, 10))], added=[blk(1, 5)]))
        raise RuntimeError("crash")
    assert ledger.digest() == before


def test_accepted_ids_and_sequences_are_unique_and_found_by_either(ledger: Ledger) -> None:
    write(
        ledger,
        Outcome(
            accepted=[
                (1, "verra", "e1", b"h" * 32, 1, "raw/0/0"),
                (2, "verra", "e2", b"i" * 32, 2, "raw/0/1"),
                (3, "gold", "e1", b"j" * 32, 1, "raw/1/0"),
            ]
        ),
    )
    snap = read(ledger, asked(identities=[("verra", "e1", 7), ("verra", "e3", 2)]))
    assert sorted(set(snap.accepted)) == [
        ("verra", "e1", b"h" * 32, 1, 1),
        ("verra", "e2", b"i" * 32, 2, 2),
    ]
    assert read(ledger, asked(identities=[("gold", "e2", 2)])).accepted == ()
    assert ledger.accepted_count() == 3
    with pytest.raises(Exception), ledger.transaction():  # type: ignore[attr-defined]  # noqa: B017
        ledger.record(Outcome(accepted=[(9, "verra", "e1", b"x" * 32, 9, "raw/0/2")]))
    assert ledger.accepted_count() == 3


def test_reserved_positions_follow_every_position_used(ledger: Ledger) -> None:
    first = read(ledger, asked(identities=[("verra", "e1", 1), ("verra", "e2", 2)])).positions
    assert len(first) == 2 and first[0] < first[1]
    write(ledger, Outcome(accepted=[(first[0], "verra", "e1", bytes(32), 1, "raw/0/0")]))
    (later,) = read(ledger, asked(identities=[("verra", "e3", 3)])).positions
    assert later > first[0]


def test_stored_sequence_marks_are_never_lowered(ledger: Ledger) -> None:
    """The checked mark and each partition's mark only go up: a write of a lower one
    (a member that read before another raised it) leaves the stored one."""

    def window(checked: int, *marks: Mark) -> Window:
        return Window(checked, marks, checked)

    write(ledger, Outcome(windows={"verra": window(10, Mark(0, 10, 100.0), Mark(2, 8, 90.0))}))
    write(
        ledger,
        Outcome(
            windows={
                "verra": window(7, Mark(0, 9, 95.0), Mark(1, 4, 99.0), Mark(2, 12, 120.0)),
                "gold": window(3),
            }
        ),
    )
    assert ledger.sequence_checked("verra") == 10 and ledger.sequence_checked("gold") == 3
    assert ledger.sequence_marks("verra") == [
        Mark(0, 10, 100.0),
        Mark(1, 4, 99.0),
        Mark(2, 12, 120.0),
    ]
    assert ledger.sequence_marks("gold") == [] and ledger.sequence_checked("cercarbono") is None
    write(ledger, Outcome(windows={"verra": Window(11, (), 12)}))
    assert ledger.sequence_checked("verra") == 12


def test_sequences_seen_are_accepted_and_refused_numbers_above_the_checked_mark(
    ledger: Ledger,
) -> None:
    accepted = [(n, "verra", f"e{n}", bytes(32), n, f"raw/0/{n}") for n in (3, 4, 7, 9)]
    write(
        ledger,
        Outcome(
            accepted=[*accepted, (20, "gold", "g5", bytes(32), 5, "raw/1/0")],
            refused=[("verra", 5)],
            windows={"verra": Window(4, (), 4)},
        ),
    )
    assert ledger.sequences_seen("verra", 0, 100) == {3, 4, 5, 7, 9}
    assert ledger.sequences_seen("verra", 4, 8) == {5, 7}
    assert ledger.sequences_seen("gold", 0, 100) == {5}
    # refused numbers at or below the new checked mark are settled and forgotten
    write(ledger, Outcome(refused=[("verra", 11)], windows={"verra": Window(4, (), 8)}))
    assert ledger.sequences_seen("verra", 0, 100) == {3, 4, 7, 9, 11}
    # the snapshot's window carries the stored numbers it settles
    snap = read(ledger, asked(numbers=[("verra", 0, 12)], now=1.0))
    assert snap.windows["verra"].checked == 8 and snap.windows["verra"].through == 12
    assert snap.windows["verra"].seen == {9, 11}


def test_digest_depends_on_every_block_field(ledger: Ledger) -> None:
    write(ledger, Outcome(added=[blk(1, 10)]))
    digests = {ledger.digest()}
    for change in (
        {"account": "b"},
        {"status": Status.RETIRED},
        {"labels": ('{"x":1}',)},
        {"vintage": 2023},
        {"host_party": "GHA"},
        {"issued_by": "e2"},
        {"unit_type": "VER"},
        {"project_id": "1"},
    ):
        write(ledger, Outcome(deleted=[block_key(blk(1, 10))], added=[blk(1, 10, **change)]))
        digests.add(ledger.digest())
        write(ledger, Outcome(deleted=[block_key(blk(1, 10))], added=[blk(1, 10)]))
    assert len(digests) == 9


def _signed_stream() -> list[Item]:
    private = Ed25519PrivateKey.generate()
    public = public_key_bytes(private)
    record = KeyRecord("verra", make_key_id("verra", public, T0), public, T0)
    ring, codec = KeyRing([record]), default_codec()
    signed = mixed_stream({"verra": EventSigner(codec, record.key_id, private)}, 600, projects=4)
    rng = random.Random(3)
    for i in rng.sample(range(len(signed)), 40):  # identical repeats, near and far
        signed.insert(min(i + rng.randrange(1, 300), len(signed)), signed[i])
    return [
        (
            Incoming(m.value, list(m.headers), m.key, f"raw/0/{i}", 0, i),
            verify_and_decode(m.value, m.headers, ring, codec),
        )
        for i, m in enumerate(signed)
    ]


def _judged(ledger: Ledger, batches: list[list[Item]]) -> list[tuple[str, str | None, int | None]]:
    out = []
    for batch in batches:
        with ledger.transaction():  # type: ignore[attr-defined]
            outcome = judge(batch, ledger.snapshot(ask(batch, time.time())), TOPICS)
            ledger.record(outcome)
        out += [
            (v.outcome, v.reason.value if v.reason else None, v.position)
            for _, v in outcome.verdicts
        ]
    return out


def test_judging_in_batches_equals_judging_one_event_at_a_time(ledger: Ledger) -> None:
    """A batch judged against one snapshot gives exactly the verdicts and ledger of one
    event per batch, on every backend — with events touching the same blocks within and
    across batches, and identical repeats."""
    stream = _signed_stream()
    one_by_one = MemoryLedger()
    expected = _judged(one_by_one, [[item] for item in stream])
    rng = random.Random(5)
    cuts = sorted(rng.sample(range(1, len(stream)), 12))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    got = _judged(ledger, batches)
    assert [v[:2] for v in got] == [v[:2] for v in expected]
    assert {"accepted", "rejected", "repeat"} <= {v[0] for v in got}
    accepted = [p for o, _, p in got if o == "accepted"]
    assert accepted == sorted(accepted) and len(set(accepted)) == len(accepted)
    repeats = [p for o, _, p in got if o == "repeat"]
    assert set(repeats) <= set(accepted)  # a repeat names the original's position
    assert ledger.blocks() == one_by_one.blocks()
    assert ledger.digest() == one_by_one.digest()
    assert ledger.accepted_count() == len(accepted)


def test_labels_only_on_active_units_of_the_label_s_host_on_every_backend(
    ledger: Ledger,
) -> None:
    """One project's range holds units of two host Parties; some are retired. A label over
    both hosts' blocks, or over retired units, is refused with its reason, in one batch
    as event by event; the units' later history is unaffected."""
    private = Ed25519PrivateKey.generate()
    public = public_key_bytes(private)
    record = KeyRecord("verra", make_key_id("verra", public, T0), public, T0)
    ring, codec = KeyRing([record]), default_codec()
    signer = EventSigner(codec, record.key_id, private)
    a6 = {**LABEL, "host_party": "RWA"}
    kenya = issued(labels=[], serial_block=block(1500, 1999), quantity=500)
    kenya["project"] = {**kenya["project"], "host_party": "KEN"}
    story = [
        issued(labels=[], serial_block=block(1000, 1499), quantity=500),
        kenya,
        label_applied(label=a6),  # 1000-1999: Kenya's block too
        retired(serial_block=block(1000, 1099), quantity=100),
        label_applied(serial_block=block(1000, 1099), quantity=100, label=a6),
        label_applied(serial_block=block(1100, 1499), quantity=400, label=a6),
        transferred(serial_block=block(1100, 1499), quantity=400),
    ]
    items: list[Item] = []
    for n, payload in enumerate(story, 1):
        event = RegistryEvent.model_validate(envelope(payload, event_id=f"e{n}", sequence=n))
        m = signer.sign_event(event)
        items.append(
            (Incoming(m.value, list(m.headers), m.key, f"raw/0/{n}", 0, n),
             verify_and_decode(m.value, m.headers, ring, codec))
        )  # fmt: skip
    verdicts = [(o, r) for o, r, _ in _judged(ledger, [items])]
    assert verdicts == [
        ("accepted", None),
        ("accepted", None),
        ("rejected", "label_host_mismatch"),
        ("accepted", None),
        ("rejected", "units_not_active"),
        ("accepted", None),
        ("accepted", None),
    ]
    one_by_one = MemoryLedger()
    assert [(o, r) for o, r, _ in _judged(one_by_one, [[i] for i in items])] == verdicts
    assert ledger.digest() == one_by_one.digest()
    labelled = [(b.start, b.end, b.account) for b in ledger.blocks() if b.labels]
    assert labelled == [(1100, 1499, "acct-buyer")]


# -- the SQL stores' own parts ------------------------------------------------------------


def test_offsets_and_the_outbox_commit_with_the_outcome(store: LedgerStore) -> None:
    with store.transaction():
        store.set_offsets("raw", {0: 5, 1: 7})
        store.set_offsets("raw", {1: 9})
        store.outbox_add(0, 3, "verified", b"k", b"v1", [("a", b"\x00\xff")])
        store.outbox_add(1, 8, "rejected", None, b"v2", [])
        store.outbox_add(0, 4, "verified", None, b"v3", [])
        store.outbox_add(0, 4, "alerts", None, b"v4", [])  # a second message of offset 4
    written = store.last_outbox
    assert [(m.source_partition, m.source_offset, m.seq, m.topic, m.value) for m in written] == [
        (0, 3, 0, "verified", b"v1"),
        (1, 8, 0, "rejected", b"v2"),
        (0, 4, 0, "verified", b"v3"),
        (0, 4, 1, "alerts", b"v4"),
    ]
    assert store.offsets("raw") == {0: 5, 1: 9}
    pending = store.outbox_pending()  # in causal order per raw partition
    assert [m.value for m in pending] == [b"v1", b"v3", b"v4", b"v2"]
    assert sorted(pending, key=lambda m: m.value) == sorted(written, key=lambda m: m.value)
    assert pending[0].key == b"k" and pending[0].headers == [("a", b"\x00\xff")]
    assert [m.value for m in store.outbox_pending([1])] == [b"v2"]
    assert store.outbox_pending([]) == []
    store.outbox_done({0: 3})  # acknowledged through offset 3 of partition 0
    assert [m.value for m in store.outbox_pending()] == [b"v3", b"v4", b"v2"]
    with store.transaction():
        store.outbox_done({0: 4, 1: 7})
    assert [m.value for m in store.outbox_pending()] == [b"v2"]
    store.outbox_done({1: 8})
    assert store.outbox_pending() == []


def test_a_failed_transaction_keeps_no_offsets_or_outbox(store: LedgerStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.record(Outcome(added=[blk(1, 10)]))
        store.set_offsets("raw", {0: 99})
        store.outbox_add(0, 3, "t", b"k", b"v", [("h", b"1")])
        raise RuntimeError("crash")
    assert (store.blocks(), store.offsets("raw"), store.outbox_pending()) == ([], {}, [])


def test_writes_need_a_transaction(store: LedgerStore) -> None:
    with pytest.raises(RuntimeError):
        store.outbox_add(0, 0, "t", None, b"v", [])
    with pytest.raises(RuntimeError):
        store.record(Outcome())
    with pytest.raises(RuntimeError):
        store.snapshot(asked())


def test_rejected_records_filter_and_reprocess(store: LedgerStore) -> None:
    write(
        store,
        Outcome(
            rejected=[
                Rejected(registry, f"e{i}", reason, "m", bytes([i]), [("h", b"x")], "raw", at)
                for i, (registry, reason, at) in enumerate(
                    [
                        ("verra", "key_unknown", "2026-01-01T00:00:00Z"),
                        ("verra", "units_not_found", "2026-02-01T00:00:00Z"),
                        (None, "undecodable.bad_marker", "2026-03-01T00:00:00Z"),
                    ]
                )
            ]
        ),
    )
    assert [r.reason for r in store.rejected(registry_id="verra")] == [
        "key_unknown",
        "units_not_found",
    ]
    assert [r.event_id for r in store.rejected(since="2026-01-15T00:00:00Z")] == ["e1", "e2"]
    assert [r.event_id for r in store.rejected(until="2026-01-15T00:00:00Z")] == ["e0"]
    (first,) = store.rejected(reason="key_unknown")
    assert (first.value, first.headers) == (b"\x00", [("h", b"x")])
    with store.transaction():
        store.mark_reprocessed(first.id, "2026-04-01T00:00:00Z")
    assert [r.event_id for r in store.rejected()] == ["e1", "e2"]
    assert len(store.rejected(include_reprocessed=True)) == 3
    assert store.rejected_by_id(first.id).reprocessed_at == "2026-04-01T00:00:00Z"  # type: ignore[union-attr]
    assert store.rejected_by_id(10_000) is None


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'l.sqlite'}"
    first = open_ledger(url)
    with first.transaction():
        first.record(Outcome(added=[blk(1, 10)]))
        first.set_offsets("raw", {0: 3})
    digest = first.digest()
    first.close()
    again = open_ledger(url)
    assert (again.digest(), again.offsets("raw")) == (digest, {0: 3})
    again.close()


def test_postgresql_itself_refuses_overlapping_blocks(pg_url: str) -> None:
    ledger = open_ledger(pg_url)
    write(ledger, Outcome(added=[blk(1, 10)]))
    with pytest.raises(Exception, match="blocks_never_overlap"):
        write(ledger, Outcome(added=[blk(5, 20, issued_by="e2")]))
    assert [b.start for b in ledger.blocks()] == [1]
    ledger.close()


def test_outbox_numbers_each_consumed_message_s_messages_even_interleaved(
    store: LedgerStore,
) -> None:
    with store.transaction():
        store.outbox_add(0, 3, "verified", None, b"a", [])
        store.outbox_add(1, 8, "rejected", None, b"b", [])
        store.outbox_add(0, 3, "alerts", None, b"c", [])  # offset 3 again, after another
    assert [(m.source_partition, m.source_offset, m.seq) for m in store.last_outbox] == [
        (0, 3, 0),
        (1, 8, 0),
        (0, 3, 1),
    ]
    assert [m.value for m in store.outbox_pending([0])] == [b"a", b"c"]
