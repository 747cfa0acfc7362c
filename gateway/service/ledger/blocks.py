"""Unit blocks: contiguous, inclusive ranges of one registry's units with one holder,
one status and one set of labels. A block splits when part of it moves or changes."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

from gateway.contract.labels import label_identity


class Status(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"
    CANCELLED = "cancelled"


class Block(NamedTuple):
    """Immutable; a tuple because the ledger builds and compares millions of them
    (a frozen dataclass is four times slower to build)."""

    registry_id: str
    series: str
    start: int
    end: int
    project_id: str
    host_party: str
    vintage: int
    unit_type: str
    account: str
    status: Status
    labels: tuple[str, ...]  # canonical label JSON, sorted
    issued_by: str  # event id of the issuance the units come from

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def piece(self, start: int, end: int) -> Block:
        assert self.start <= start <= end <= self.end
        return self.changed(start=start, end=end)

    def changed(
        self,
        *,
        start: int | None = None,
        end: int | None = None,
        account: str | None = None,
        status: Status | None = None,
        labels: tuple[str, ...] | None = None,
    ) -> Block:
        """A copy with some fields changed (built directly: blocks split on every
        event, and ``_replace`` is several times slower)."""
        return Block(
            self.registry_id,
            self.series,
            self.start if start is None else start,
            self.end if end is None else end,
            self.project_id,
            self.host_party,
            self.vintage,
            self.unit_type,
            self.account if account is None else account,
            self.status if status is None else status,
            self.labels if labels is None else labels,
            self.issued_by,
        )

    def label_dicts(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.labels]

    def with_label(self, text: str) -> Block:
        return self.changed(labels=tuple(sorted({*self.labels, text})))

    def without_label(self, identity: tuple[Any, ...]) -> Block:
        kept = tuple(t for t in self.labels if label_identity(json.loads(t)) != identity)
        return self.changed(labels=kept)

    def has_label(self, identity: tuple[Any, ...]) -> bool:
        return any(label_identity(json.loads(t)) == identity for t in self.labels)


BLOCK_COLUMNS = (
    "registry_id, series, start_no, end_no, project_id, host_party, vintage, "
    "unit_type, account, status, labels, issued_by"
)
_STATUS = {s.value: s for s in Status}


@functools.lru_cache(maxsize=4096)
def _labels(text: str) -> tuple[str, ...]:
    """Blocks share few distinct label sets: parse each once."""
    return tuple(json.loads(text))


@functools.lru_cache(maxsize=4096)
def _labels_text(labels: tuple[str, ...]) -> str:
    return json.dumps(list(labels))


def block_of_row(row: Sequence[Any]) -> Block:
    """A block from its row (:data:`BLOCK_COLUMNS`)."""
    return Block(
        row[0],
        row[1],
        int(row[2]),
        int(row[3]),
        row[4],
        row[5],
        int(row[6]),
        row[7],
        row[8],
        _STATUS[row[9]],
        _labels(row[10]),
        row[11],
    )


def block_row(b: Block) -> tuple[Any, ...]:
    """A block as stored (:data:`BLOCK_COLUMNS`)."""
    return (
        b.registry_id,
        b.series,
        b.start,
        b.end,
        b.project_id,
        b.host_party,
        b.vintage,
        b.unit_type,
        b.account,
        b.status.value,
        _labels_text(b.labels),
        b.issued_by,
    )


def digest(blocks: Iterable[Block]) -> str:
    """SHA-256 over blocks in key order: equal ledgers, equal digests, whatever the backend."""
    h = hashlib.sha256()
    for b in blocks:
        h.update(json.dumps(block_row(b), separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()
