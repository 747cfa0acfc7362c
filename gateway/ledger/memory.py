"""An in-memory ledger view, for the rules' unit tests and for dry runs."""

from __future__ import annotations

import bisect

from .blocks import Block
from .rules import Change


class MemoryLedger:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str], list[Block]] = {}

    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[Block]:
        blocks = self._series.get((registry_id, series), [])
        i = bisect.bisect_right([b.start for b in blocks], start) - 1
        i = max(i, 0)
        return [b for b in blocks[i:] if b.start <= end and b.end >= start]

    def apply(self, change: Change) -> None:
        for b in change.remove:
            self._series[(b.registry_id, b.series)].remove(b)
        for b in change.add:
            blocks = self._series.setdefault((b.registry_id, b.series), [])
            bisect.insort(blocks, b, key=lambda x: x.start)

    def blocks(self) -> list[Block]:
        return [b for key in sorted(self._series) for b in self._series[key]]
