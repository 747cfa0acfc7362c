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

Pure: the ledger store keeps the marks and the numbers that arrived; when it reads a
batch's snapshot it works out each registry's :class:`Window` with :func:`advance`, and the
judge reports the numbers of the window that never arrived
(:func:`gateway.service.judge.judge`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


class SequencesRead:
    """A batch's authentic events by registry: per raw partition the highest number read,
    and the registry's lowest number."""

    def __init__(self, now: float) -> None:
        self.now = now  # when the batch is judged: the time its marks are raised
        self.highs: dict[str, dict[int, int]] = {}
        self.lowest: dict[str, int] = {}

    def add(self, registry: str, partition: int, n: int) -> None:
        highs = self.highs.setdefault(registry, {})
        highs[partition] = max(n, highs.get(partition, n))
        self.lowest[registry] = min(n, self.lowest.get(registry, n))

    def marks(self, registry: str) -> list[Mark]:
        return [Mark(p, high, self.now) for p, high in self.highs[registry].items()]


@dataclass(frozen=True)
class Window:
    """What one batch settles of a registry's numbers: every number in
    ``(checked, through]`` has arrived or is missing; ``seen`` are those of them stored
    as arrived (accepted or refused) before the batch."""

    checked: int
    marks: tuple[Mark, ...]  # the registry's marks after the batch
    through: int
    seen: frozenset[int] = frozenset()

    @property
    def settles(self) -> bool:
        return self.through > self.checked


def advance(
    checked: int | None,
    stored: Sequence[Mark],
    read: SequencesRead,
    registry: str,
    partitions: Iterable[int],
    quiet_after: float = QUIET_AFTER,
) -> Window:
    """The registry's window after a batch, from its stored checked mark (None before its
    first event) and marks.

    Numbers below the first one read of a registry are not checked. When the gateway
    first reads a registry, every partition of the raw topic gets a mark at 0: one not
    read yet (another member's, or behind) holds the watermark back until it delivers
    the registry's events or counts as quiet. The batch's own partitions count too: the
    client may not know the topic's yet."""
    if checked is None:
        checked = read.lowest[registry] - 1
    if not stored:
        stored = [Mark(p, 0, read.now) for p in sorted({*partitions, *read.highs[registry]})]
    active_at = max(m.raised_at for m in stored)  # when the registry was last read
    marks = merge(stored, read.marks(registry))
    return Window(checked, tuple(marks), watermark(marks, active_at, quiet_after))
