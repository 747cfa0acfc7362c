"""The range-block machinery both ledgers use: non-overlapping, inclusive ranges of a
registry's serial series (the gateway's unit blocks, the national adapter's Article 6
blocks and issuances), indexed in memory, and the copy of them one transaction reads
set-wise, changes in memory and writes in bulk (:class:`StagedBlocks`).

What one ledger transaction has read and changed, kept in memory.

A batch of events is judged one event after the other, each against the ledger as the
events before it left it. Asking the database for every event costs a round trip per
question; instead the store reads, in a few set-wise queries, everything the batch may
touch (the blocks of every serial block named, the accepted ids and sequences, the
project identities), the rules decide against this copy, and the net changes are
written in bulk when the transaction commits.

Correctness never depends on what was read ahead: a question about anything not read
ahead goes to the database and its answer joins the copy. Blocks only ever split into
pieces of themselves or come from an issuance of units no stored block has, so stored
blocks not yet read share no unit with anything in the copy.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Generic, Protocol, TypeVar

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


class Piecewise(Ranged, Protocol):
    def piece(self: P, start: int, end: int) -> P:
        """The same block narrowed to units ``start``–``end`` (inside its own)."""
        ...


P = TypeVar("P", bound=Piecewise)


def split(
    blocks: Iterable[P], start: int, end: int, update: Callable[[P], P | None]
) -> tuple[list[P], list[P]]:
    """(removed, added): each block replaced by its pieces outside ``start``–``end`` and
    its piece inside as ``update`` changes it; a block whose ``update`` is None stays
    whole. How both ledgers change part of a block: the rest keeps what it was."""
    removed: list[P] = []
    added: list[P] = []
    for b in blocks:
        updated = update(b.piece(max(b.start, start), min(b.end, end)))
        if updated is None:
            continue
        removed.append(b)
        if b.start < start:
            added.append(b.piece(b.start, start - 1))
        added.append(updated)
        if b.end > end:
            added.append(b.piece(end + 1, b.end))
    return removed, added


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


BlockKey = tuple[str, str, int]  # registry, series, first unit: the primary key
Range = tuple[str, str, int, int]  # registry, series, first and last unit
NO_RANGE: Range = ("", "", 0, 0)  # no registry's (ids are never empty): pads queries


def block_key(b: Ranged) -> BlockKey:
    return (b.registry_id, b.series, b.start)


class StagedBlocks(Generic[R]):
    """Blocks (any non-overlapping ranges keyed by their first unit) read in this
    transaction, changed in memory; :attr:`deleted` and :attr:`added` are the net
    writes."""

    def __init__(self) -> None:
        self.memory: RangeIndex[R] = RangeIndex()
        self._read: set[BlockKey] = set()  # stored blocks seen (never read twice)
        self._covered: set[Range] = set()
        self.deleted: dict[BlockKey, None] = {}  # stored blocks to delete, in order
        self.added: dict[BlockKey, R] = {}  # blocks to insert

    def read(self, ranges: Iterable[Range], stored: Callable[[list[Range]], Iterable[R]]) -> None:
        """Read with ``stored`` (the store's set-wise query: each block of each range
        given, and maybe more) the blocks of those ``ranges`` not read before."""
        wanted = [r for r in dict.fromkeys(ranges) if r not in self._covered]
        for b in stored(wanted):
            key = block_key(b)
            if key not in self._read:  # a block read before may have changed since
                self._read.add(key)
                self.memory.insert(b)
        self._covered.update(wanted)

    def overlapping(self, wanted: Range, stored: Callable[[list[Range]], Iterable[R]]) -> list[R]:
        """The blocks sharing a unit with ``wanted``, ordered by first unit; read with
        ``stored`` unless read before."""
        if wanted not in self._covered:
            self.read([wanted], stored)
        return self.memory.overlapping(*wanted)

    def apply(self, remove: Iterable[R], add: Iterable[R]) -> None:
        """``remove`` replaced by ``add`` (each removed block was read or added here)."""
        for b in remove:
            key = block_key(b)
            self.memory.discard(b)
            if self.added.get(key) == b:
                del self.added[key]  # added in this transaction: never stored
            else:
                self._read.add(key)  # stored: a later read must not bring it back
                self.deleted[key] = None
        for b in add:
            self.memory.insert(b)
            self.added[block_key(b)] = b
