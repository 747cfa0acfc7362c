"""An in-memory ledger of unit blocks: for the rules' unit tests, dry runs and benchmarks."""

from __future__ import annotations

from gateway.ranges import RangeIndex
from gateway.service.ledger.blocks import Block
from gateway.service.ledger.rules import Change


class MemoryLedger(RangeIndex[Block]):
    def apply(self, change: Change) -> None:
        for b in change.remove:
            if not self.discard(b):
                raise ValueError(f"block {b.start}-{b.end} is not in the ledger")
        for b in change.add:
            self.insert(b)

    def blocks(self) -> list[Block]:
        return [b for key in sorted(self._series) for b in self._series[key]]
