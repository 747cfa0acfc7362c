"""Sequence gaps: the numbers a registry skipped, told apart from numbers still on their way.

A registry numbers its events 1, 2, 3…; the key (registry + project) spreads them over
the raw topic's partitions, and each partition keeps the registry's order. So a number
above the last one read is not missing yet: it may sit in a partition not read that far.
It is missing once every partition carrying the registry's events has delivered a later
number: the registry's *watermark* is the lowest of its partitions' highest numbers.

A partition counts as quiet — its projects stopped sending — once the registry has gone
on being read from other partitions for a while after that partition's mark was last
raised (by the gateway's clock, not the registry's event time: a backlog spans days of
event time in seconds), and then no longer holds the watermark back. A registry that
falls silent altogether and resumes later finds its partitions as it left them, none
quiet. A partition left unread for that long while it still holds the registry's events
(a member stalled for minutes) can cause a false alert.

Pure: the ledger store keeps the marks and the numbers that arrived; the gateway asks
once per batch (:func:`gateway.service.verdict.sequence_gap_alerts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: seconds of the registry's activity elsewhere after which a partition whose mark was not
#: raised no longer holds the watermark back
QUIET_AFTER = 300.0


@dataclass(frozen=True)
class Mark:
    """The highest number of a registry read from one partition, and when the gateway
    raised it (Unix seconds, the gateway's clock)."""

    partition: int
    high: int
    raised_at: float


def watermark(marks: Iterable[Mark], active_at: float, quiet_after: float = QUIET_AFTER) -> int:
    """The highest number up to which every number has arrived or never will, as far as
    the marks tell; ``active_at``: when the registry was last read before now (0 if no
    partition is active)."""
    return min((m.high for m in marks if m.raised_at >= active_at - quiet_after), default=0)


def merge(stored: Iterable[Mark], read: Iterable[Mark]) -> list[Mark]:
    """The marks after a batch: per partition, the higher of the stored and the read."""
    by_partition = {m.partition: m for m in stored}
    for m in read:
        old = by_partition.get(m.partition)
        if old is None or m.high > old.high:
            by_partition[m.partition] = m
    return sorted(by_partition.values(), key=lambda m: m.partition)


def missing(checked: int, through: int, seen: Iterable[int]) -> list[tuple[int, int]]:
    """The runs of numbers in ``(checked, through]`` not in ``seen``, as (first, last)."""
    runs: list[tuple[int, int]] = []
    at = checked + 1
    for n in sorted({s for s in seen if checked < s <= through}):
        if n > at:
            runs.append((at, n - 1))
        at = n + 1
    if at <= through:
        runs.append((at, through))
    return runs
