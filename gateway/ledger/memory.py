"""An in-memory ledger view, for the rules' unit tests, dry runs and benchmarks."""

from __future__ import annotations

import bisect

from .blocks import Block
from .rules import Change


def _start(block: Block) -> int:
    return block.start


class MemoryLedger:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str], list[Block]] = {}

    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[Block]:
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

    def apply(self, change: Change) -> None:
        for b in change.remove:  # blocks never overlap: the start finds the block
            blocks = self._series[(b.registry_id, b.series)]
            i = bisect.bisect_left(blocks, b.start, key=_start)
            if i == len(blocks) or blocks[i] != b:
                raise ValueError(f"block {b.start}-{b.end} is not in the ledger")
            del blocks[i]
        for b in change.add:
            blocks = self._series.setdefault((b.registry_id, b.series), [])
            bisect.insort(blocks, b, key=_start)

    def blocks(self) -> list[Block]:
        return [b for key in sorted(self._series) for b in self._series[key]]
