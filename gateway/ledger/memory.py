"""An in-memory ledger view: for the rules' unit tests, dry runs, benchmarks, and the
copy of the blocks one transaction works on (:mod:`gateway.ledger.staged`)."""

from __future__ import annotations

import bisect
from operator import attrgetter
from typing import Generic, Protocol, TypeVar

from .blocks import Block
from .rules import Change

_start = attrgetter("start")


class Ranged(Protocol):
    """Units ``start``–``end`` (inclusive) of a registry's serial series."""

    @property
    def registry_id(self) -> str: ...
    @property
    def series(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


R = TypeVar("R", bound=Ranged)


class RangeIndex(Generic[R]):
    """Non-overlapping ranges by series, ordered by first unit: the gateway's blocks,
    and the national adapter's Article 6 blocks and issuances."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], list[R]] = {}

    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[R]:
        blocks = self._series.get((registry_id, series), [])
        i = max(bisect.bisect_right(blocks, start, key=_start) - 1, 0)
        found = []
        for j in range(i, len(blocks)):
            b = blocks[j]
            if b.start > end:
                break
            if b.end >= start:
                found.append(b)
        return found

    def insert(self, block: R) -> None:
        blocks = self._series.setdefault((block.registry_id, block.series), [])
        bisect.insort(blocks, block, key=_start)

    def discard(self, block: R) -> bool:
        """Remove ``block`` if it is here (blocks never overlap: its start finds it)."""
        blocks = self._series.get((block.registry_id, block.series), [])
        i = bisect.bisect_left(blocks, block.start, key=_start)
        if i == len(blocks) or blocks[i] != block:
            return False
        del blocks[i]
        return True


class MemoryLedger(RangeIndex[Block]):
    def apply(self, change: Change) -> None:
        for b in change.remove:
            if not self.discard(b):
                raise ValueError(f"block {b.start}-{b.end} is not in the ledger")
        for b in change.add:
            self.insert(b)

    def blocks(self) -> list[Block]:
        return [b for key in sorted(self._series) for b in self._series[key]]
