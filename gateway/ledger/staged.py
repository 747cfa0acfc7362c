"""What one ledger transaction has read and changed, kept in memory.

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

from collections.abc import Callable, Iterable, Iterator
from typing import Generic

from .memory import R, Ranged, RangeIndex

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


class StagedIdentities:
    """Accepted event ids and sequence numbers, as stored plus this transaction's."""

    def __init__(self) -> None:
        #: (registry, event id) → (SHA-256 of the value, ledger position), None if unseen
        self.ids: dict[tuple[str, str], tuple[bytes, int] | None] = {}
        #: (registry, sequence) → event id holding it, None if free
        self.sequences: dict[tuple[str, int], str | None] = {}
        self.rows: list[tuple[int, str, str, bytes, int, str]] = []  # to insert

    def knows(self, registry_id: str, event_id: str, sequence: int) -> bool:
        return (registry_id, event_id) in self.ids and (registry_id, sequence) in self.sequences

    def load(
        self,
        asked: Iterable[tuple[str, str, int]],
        stored: Iterable[tuple[str, str, bytes, int, int]],
    ) -> None:
        """What the store holds for the ``asked`` (registry, event id, sequence)."""
        asked = list(asked)
        for registry, event_id, sequence in asked:
            self.ids.setdefault((registry, event_id), None)
            self.sequences.setdefault((registry, sequence), None)
        for registry, event_id, sha, position, sequence in stored:
            if self.ids.get((registry, event_id)) is None:
                self.ids[registry, event_id] = (sha, position)
            if self.sequences.get((registry, sequence)) is None:
                self.sequences[registry, sequence] = event_id

    def clash(
        self, registry_id: str, event_id: str, sequence: int
    ) -> tuple[tuple[bytes, int] | None, str | None]:
        return self.ids[registry_id, event_id], self.sequences[registry_id, sequence]

    def held(self, registry_id: str, after: int, through: int) -> Iterator[int]:
        """The registry's sequence numbers in ``(after, through]`` known to be held by an
        accepted event (read, or accepted in this transaction)."""
        for (registry, sequence), holder in self.sequences.items():
            if holder is not None and registry == registry_id and after < sequence <= through:
                yield sequence

    def accept(
        self, position: int, registry_id: str, event_id: str, sha: bytes, sequence: int, source: str
    ) -> None:
        self.ids[registry_id, event_id] = (sha, position)
        self.sequences[registry_id, sequence] = event_id
        self.rows.append((position, registry_id, event_id, sha, sequence, source))


Issuance = tuple[str, str, str, str, str]  # registry, project, vintage start, end, event id


class StagedIssuances:
    """Issuances by normalised project identity, as stored plus this transaction's."""

    def __init__(self) -> None:
        self.by_identity: dict[str, list[Issuance]] = {}
        self.rows: list[tuple[str, str, str, str, str, str]] = []  # to insert

    def load(self, identities: Iterable[str], stored: Iterable[tuple[str, Issuance]]) -> None:
        for identity in identities:
            self.by_identity.setdefault(identity, [])
        for identity, issuance in stored:
            self.by_identity[identity].append(issuance)

    def record(self, identity: str, issuance: Issuance) -> None:
        self.by_identity.setdefault(identity, []).append(issuance)
        self.rows.append((identity, *issuance))
