"""What one ledger transaction has read of the accepted ids, sequences and issuances,
kept in memory beside its blocks (:class:`gateway.ranges.StagedBlocks`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


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
