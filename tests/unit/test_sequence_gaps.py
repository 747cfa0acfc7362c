"""Sequence gaps: a number is reported missing once every partition carrying the
registry's events has delivered a later one, never while it may still be on its way."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contract.models import RegistryEvent
from gateway.service.judge import Item, ask, judge
from gateway.service.ledger.memory import MemoryLedger
from gateway.service.ledger.sequences import Mark, merge, missing, watermark
from gateway.streaming.process import Incoming
from gateway.streaming.topics import Topics
from tests.factories import block, envelope, issued, retired

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def test_the_watermark_is_the_lowest_of_the_partitions_highest_numbers() -> None:
    assert watermark([], active_at=100.0) == 0
    marks = [Mark(0, 40, 100.0), Mark(1, 35, 99.0), Mark(2, 52, 101.0)]
    assert watermark(marks, active_at=101.0) == 35


def test_a_partition_not_raised_while_the_registry_went_on_elsewhere_is_quiet() -> None:
    marks = [Mark(0, 40, 10_000.0), Mark(1, 7, 10_000.0 - 301)]
    assert watermark(marks, active_at=10_000.0, quiet_after=300) == 40
    assert watermark(marks, active_at=10_000.0, quiet_after=302) == 7
    # silent for a day, then read again from one partition: the others as it left them
    left = [Mark(0, 40, 10_000.0), Mark(1, 35, 9_900.0)]
    assert watermark([*left, Mark(2, 90, 96_400.0)], active_at=10_000.0) == 35


def test_merge_keeps_the_higher_mark_of_each_partition() -> None:
    stored = [Mark(0, 10, 1.0), Mark(2, 30, 3.0)]
    read = [Mark(0, 12, 2.0), Mark(1, 5, 2.5), Mark(2, 29, 2.9)]
    assert merge(stored, read) == [Mark(0, 12, 2.0), Mark(1, 5, 2.5), Mark(2, 30, 3.0)]


def test_missing_runs() -> None:
    assert missing(3, 10, [4, 5, 8, 2, 11]) == [(6, 7), (9, 10)]
    assert missing(3, 3, []) == []
    assert missing(0, 4, [1, 2, 3, 4]) == []
    assert missing(0, 3, []) == [(1, 3)]


def _event(n: int) -> RegistryEvent:
    """Number ``n``: an issuance of units of its own (accepted), or every fifth a
    retirement of units never issued (refused: its number arrived all the same)."""
    payload = (
        retired() if n % 5 == 0 else issued(serial_block=block(n * 10, n * 10 + 9), quantity=10)
    )
    return RegistryEvent.model_validate(
        envelope(payload, event_id=f"e{n}", sequence=n, occurred_at=T0 + dt.timedelta(seconds=n))
    )


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[list[list[int]], set[int], list[list[tuple[int, int]]]]:
    """Numbers 1…n dealt to partitions (each keeps its order), some skipped, read in
    batches that take the next few numbers of some partitions."""
    n = draw(st.integers(10, 150))
    partitions = draw(st.integers(1, 4))
    owner = draw(st.lists(st.integers(0, partitions - 1), min_size=n, max_size=n))
    skipped = draw(st.sets(st.integers(1, n), max_size=n // 4))
    streams = [[s for s in range(1, n + 1) if owner[s - 1] == p and s not in skipped]
               for p in range(partitions)]  # fmt: skip
    at = [0] * partitions
    batches: list[list[tuple[int, int]]] = []
    while any(at[p] < len(streams[p]) for p in range(partitions)):
        batch: list[tuple[int, int]] = []
        for p in range(partitions):
            take = draw(st.integers(0, 12))
            batch += [(p, s) for s in streams[p][at[p] : at[p] + take]]
            at[p] += take
        if not batch:  # always progress: the first unfinished partition's next number
            p = next(p for p in range(partitions) if at[p] < len(streams[p]))
            batch, at[p] = [(p, streams[p][at[p]])], at[p] + 1
        batches.append(batch)
    return streams, skipped, batches


def _gaps(
    ledger: MemoryLedger, batch: list[tuple[int, int]], now: float, partitions: range
) -> list[dict[str, object]]:
    """Judge one batch of (partition, number); the sequence-gap alerts it gives."""
    items: list[Item] = [
        (Incoming(b"%d" % s, [], None, f"raw/{p}/{s}", p, s), _event(s)) for p, s in batch
    ]
    with ledger.transaction():
        outcome = judge(
            items, ledger.snapshot(ask(items, now, partitions, quiet_after=1e9)), Topics()
        )
        ledger.record(outcome)
    assert {v.outcome for _, v in outcome.verdicts} <= {"accepted", "rejected"}
    gap_messages = [m for m in outcome.outbox if m.topic == Topics().alerts]
    assert len(gap_messages) == len(outcome.gaps)  # each alert also goes to the alerts topic
    return outcome.gaps


@settings(max_examples=150, deadline=None)
@given(_deliveries())
def test_reported_gaps_are_exactly_the_skipped_numbers_once_every_partition_moved_past(
    case: tuple[list[list[int]], set[int], list[list[tuple[int, int]]]],
) -> None:
    streams, skipped, batches = case
    reported: list[int] = []
    baseline: int | None = None
    ledger = MemoryLedger()
    for i, batch in enumerate(batches):
        for alert in _gaps(ledger, batch, float(i), range(len(streams))):
            first, last = int(str(alert["missing_from"])), int(str(alert["missing_to"]))
            reported += range(first, last + 1)
        if baseline is None and batch:  # numbers below the first one read: unchecked
            baseline = min(s for _, s in batch) - 1
    checked = ledger.sequence_checked("verra")
    assert len(reported) == len(set(reported))  # each gap told once
    assert set(reported) <= skipped  # never a number that arrived
    # every skipped number above the baseline is told once every partition has moved
    # past it (a partition that never carried the registry never does: never quiet here)
    final = min(stream[-1] if stream else 0 for stream in streams)
    assert baseline is not None and checked == max(baseline, final)
    assert set(reported) == {s for s in skipped if baseline < s <= final}


def test_a_registry_first_read_before_the_topic_partitions_are_known_is_checked() -> None:
    """The partitions of the raw topic come from the client's metadata, which may not
    know the topic yet: the batch's own partitions then start the registry's marks (it
    once raised ValueError from an empty list of marks, stopping the gateway)."""
    ledger = MemoryLedger()
    told = [
        (a["missing_from"], a["missing_to"])
        for i, numbers in enumerate([[1, 2, 3], [5, 6]])
        for a in _gaps(ledger, [(0, s) for s in numbers], float(i), range(0))
    ]
    assert told == [(4, 4)]
    assert ledger.sequence_checked("verra") == 6
