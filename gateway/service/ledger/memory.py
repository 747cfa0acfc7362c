"""An in-memory ledger: the rules' view for unit tests, dry runs and benchmarks, and the
judge's snapshot reader and recorder without a database (the same contract as the
stores of :mod:`.sqlite` and :mod:`.postgres`, tested by the same test case)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from gateway.ranges import RangeIndex
from gateway.service.judge import (
    Asked,
    Outcome,
    Outgoing,
    Rejected,
    Snapshot,
    Stored,
    windows_of,
)
from gateway.service.ledger.blocks import Block, digest
from gateway.service.ledger.rules import Change
from gateway.service.ledger.sequences import Mark
from gateway.service.ledger.staged import Issuance


class MemoryLedger(RangeIndex[Block]):
    def __init__(self) -> None:
        super().__init__()
        self.accepted: dict[tuple[str, str], Stored] = {}  # by (registry, event id)
        self.sequences: dict[tuple[str, int], str] = {}  # (registry, number) → event id
        self.issuances: dict[str, list[Issuance]] = {}  # by project identity
        self.checked: dict[str, int] = {}
        self.marks: dict[str, dict[int, Mark]] = {}
        self.refused: set[tuple[str, int]] = set()
        self.rejected: list[Rejected] = []
        self.outbox: list[Outgoing] = []
        self._position = 0

    def apply(self, change: Change) -> None:
        for b in change.remove:
            if not self.discard(b):
                raise ValueError(f"block {b.start}-{b.end} is not in the ledger")
        for b in change.add:
            self.insert(b)

    def blocks(self) -> list[Block]:
        return [b for key in sorted(self._series) for b in self._series[key]]

    def digest(self) -> str:
        return digest(self.blocks())

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """All or nothing, like a database's."""
        before = copy.deepcopy(self.__dict__)
        try:
            yield self
        except BaseException:
            self.__dict__ = before
            raise

    # -- the judge's snapshot reader and recorder ----------------------------------------
    def snapshot(self, asked: Asked) -> Snapshot:
        blocks = {b for r in asked.ranges for b in self.overlapping(*r)}
        accepted: set[Stored] = set()
        for registry, event_id, sequence in asked.identities:
            for held in (event_id, self.sequences.get((registry, sequence))):
                if held is not None and (registry, held) in self.accepted:
                    accepted.add(self.accepted[registry, held])
        marks = {r: self.sequence_marks(r) for r in asked.sequences.highs}
        windows = windows_of(asked, self.checked, marks, self.sequences_seen)
        positions = tuple(range(self._position + 1, self._position + 1 + asked.accepts))
        return Snapshot(
            asked=asked,
            blocks=tuple(sorted(blocks)),
            accepted=tuple(sorted(accepted)),
            issuances={i: list(self.issuances.get(i, [])) for i in asked.project_identities},
            windows=windows,
            positions=positions,
        )

    def record(self, outcome: Outcome) -> None:
        for registry, series, start in outcome.deleted:
            (b,) = [b for b in self.overlapping(registry, series, start, start) if b.start == start]
            self.discard(b)
        for b in outcome.added:
            self.insert(b)
        for position, registry, event_id, sha, sequence, _ in outcome.accepted:
            if (registry, event_id) in self.accepted or (registry, sequence) in self.sequences:
                raise ValueError(f"event {event_id} or number {sequence} of {registry} is taken")
            self.accepted[registry, event_id] = (registry, event_id, sha, position, sequence)
            self.sequences[registry, sequence] = event_id
            self._position = max(self._position, position)
        for identity, *issuance in outcome.issuances:
            self.issuances.setdefault(identity, []).append(tuple(issuance))  # type: ignore[arg-type]
        self.rejected += outcome.rejected
        checked = {r: max(w.checked, w.through) for r, w in outcome.windows.items()}
        for registry, w in outcome.windows.items():  # never lowered, as in the stores
            self.checked[registry] = max(checked[registry], self.checked.get(registry, 0))
            self.refused = {
                (r, n) for r, n in self.refused if r != registry or n > checked[registry]
            }
            marks = self.marks.setdefault(registry, {})
            for m in w.marks:
                if m.partition not in marks or m.high > marks[m.partition].high:
                    marks[m.partition] = m
        self.refused |= {(r, n) for r, n in outcome.refused if n > checked.get(r, 0)}
        self.outbox += outcome.outbox

    def sequences_seen(self, registry_id: str, after: int, through: int) -> set[int]:
        return {
            n
            for r, n in (*self.sequences, *self.refused)
            if r == registry_id and after < n <= through
        }

    def sequence_checked(self, registry_id: str) -> int | None:
        return self.checked.get(registry_id)

    def sequence_marks(self, registry_id: str) -> list[Mark]:
        return sorted(self.marks.get(registry_id, {}).values(), key=lambda m: m.partition)

    def accepted_count(self) -> int:
        return len(self.accepted)
