"""Unit blocks: contiguous, inclusive ranges of one registry's units with one holder,
one status and one set of labels. A block splits when part of it moves or changes."""

from __future__ import annotations

import json
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
