"""The ledger database: the judge's snapshot reader and recorder, the rejected-event
repository and the whole-ledger views, over SQLite (:mod:`.sqlite`) or PostgreSQL
(:mod:`.postgres`), chosen by URL.

A batch is read once (:meth:`LedgerStore.snapshot`), judged in memory
(:func:`gateway.service.judge.judge`) and its outcome written in bulk
(:meth:`LedgerStore.record`), in one transaction with the consumed offsets and the
outbox.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.ranges import NO_RANGE, Range
from gateway.service.judge import Asked, Outcome, Snapshot, Stored, windows_of
from gateway.service.ledger.blocks import BLOCK_COLUMNS, Block, block_of_row, block_row, digest
from gateway.service.ledger.sequences import Mark, Window
from gateway.service.ledger.staged import Issuance
from gateway.storage.database import chunks, values_list
from gateway.storage.outbox import pack_headers
from gateway.storage.outbox import unpack_headers as unpack_headers
from gateway.storage.tracking import TransactionalStore


@functools.lru_cache(maxsize=64)
def _identities_of(n: int) -> str:
    """Accepted events holding any of ``n`` (registry, event id, sequence): by id, then
    by sequence (each join walks one unique index)."""
    columns = "a.registry_id, a.event_id, a.value_sha256, a.position, a.sequence"
    return (
        "WITH asked (registry_id, event_id, sequence) AS"
        f" (VALUES {values_list(n, 'TEXT', 'TEXT', 'BIGINT')})"
        f" SELECT {columns} FROM asked w JOIN accepted_events a"
        " ON a.registry_id = w.registry_id AND a.event_id = w.event_id"
        f" UNION ALL SELECT {columns} FROM asked w JOIN accepted_events a"
        " ON a.registry_id = w.registry_id AND a.sequence = w.sequence"
    )


@functools.lru_cache(maxsize=64)
def _issuances_of(n: int) -> str:
    return (
        f"WITH asked (identity) AS (VALUES {values_list(n, 'TEXT')})"
        " SELECT p.identity, p.registry_id, p.project_id, p.vintage_start, p.vintage_end,"
        " p.event_id FROM asked w JOIN project_issuances p ON p.identity = w.identity"
    )


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


@dataclass(frozen=True)
class RejectedRecord:
    id: int
    registry_id: str | None
    event_id: str | None
    reason: str
    message: str
    value: bytes
    headers: list[tuple[str, bytes]]
    source: str
    received_at: str
    reprocessed_at: str | None


class LedgerStore(TransactionalStore, ABC):
    """Open with :func:`open_ledger`. Not thread-safe: a gateway process uses it from its
    event loop. A backend says how blocks of ranges are found, how ledger positions are
    reserved and how the registries' sequence rows are locked."""

    #: after a SELECT, keeps the rows read until the transaction ends
    lock_rows = ""
    #: lets an INSERT give the identity column (ledger positions reserved beforehand)
    overriding = ""

    @abstractmethod
    def _blocks_of_ranges(self, n: int) -> str:
        """SQL: blocks sharing a unit with any of ``n`` ranges (a block may come twice)."""

    @abstractmethod
    def _reserve_positions(self, n: int) -> list[int]:
        """``n`` unused ledger positions, ascending (the write lock is held)."""

    # -- the judge's snapshot -----------------------------------------------------------
    def snapshot(self, asked: Asked) -> Snapshot:
        """Read, in a few queries, what judging a batch may ask: the registries' sequence
        state (first: on PostgreSQL it locks their rows, so instances sharing the ledger
        check a registry one after the other), the blocks of every asked range, the
        accepted id and sequence clashes, the issuances of each project identity."""
        self._require_transaction("snapshot")
        windows = self._windows(asked)
        issuances: dict[str, list[Issuance]] = {i: [] for i in asked.project_identities}
        for identity, issuance in self._stored_issuances(list(asked.project_identities)):
            issuances[identity].append(issuance)
        return Snapshot(
            asked=asked,
            blocks=tuple(self._stored_blocks(list(asked.ranges))),
            accepted=tuple(self._stored_identities(list(asked.identities))),
            issuances=issuances,
            windows=windows,
            positions=tuple(self._reserve_positions(asked.accepts)) if asked.accepts else (),
        )

    def _windows(self, asked: Asked) -> dict[str, Window]:
        registries = sorted(asked.sequences.highs)
        if not registries:
            return {}
        where = f"WHERE registry_id IN ({_placeholders(len(registries))})"
        checked = {
            str(r[0]): int(r[1])
            for r in self.db.execute(
                f"SELECT registry_id, high FROM sequence_state {where}"
                f" ORDER BY registry_id{self.lock_rows}",
                registries,
            ).fetchall()
        }
        marks: dict[str, list[Mark]] = {}
        for r in self.db.execute(
            f"SELECT registry_id, partition_no, high, raised_at FROM sequence_marks {where}"
            " ORDER BY registry_id, partition_no",
            registries,
        ).fetchall():
            marks.setdefault(str(r[0]), []).append(Mark(int(r[1]), int(r[2]), float(r[3])))
        return windows_of(asked, checked, marks, self.sequences_seen)

    def _stored_blocks(self, ranges: list[Range]) -> Iterator[Block]:
        for chunk in chunks(ranges, NO_RANGE):
            sql, params = self._blocks_of_ranges(len(chunk)), [v for r in chunk for v in r]
            rows = self.db.execute(sql, params)
            yield from (block_of_row(row) for row in rows.fetchall())

    def _stored_identities(self, asked: list[tuple[str, str, int]]) -> Iterator[Stored]:
        for chunk in chunks(asked, ("", "", -1)):
            rows = self.db.execute(_identities_of(len(chunk)), [v for a in chunk for v in a])
            for r in rows.fetchall():
                yield str(r[0]), str(r[1]), bytes(r[2]), int(r[3]), int(r[4])

    def _stored_issuances(self, identities: list[str]) -> Iterator[tuple[str, Issuance]]:
        for chunk in chunks(identities, ""):
            rows = self.db.execute(_issuances_of(len(chunk)), chunk)
            for r in rows.fetchall():
                yield str(r[0]), (str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]))

    # -- the judge's recorder -----------------------------------------------------------
    def record(self, outcome: Outcome) -> None:
        """Write a batch's outcome in bulk; deletions first, so that PostgreSQL's exclusion
        constraint sees no passing overlap."""
        self._require_transaction("record")
        many = self.db.many
        many(
            "DELETE FROM blocks WHERE registry_id = ? AND series = ? AND start_no = ?",
            outcome.deleted,
        )
        many(
            f"INSERT INTO blocks ({BLOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [block_row(b) for b in outcome.added],
        )
        many(
            "INSERT INTO accepted_events (position, registry_id, event_id, value_sha256,"
            f" sequence, source){self.overriding} VALUES (?, ?, ?, ?, ?, ?)",
            outcome.accepted,
        )
        many(
            "INSERT INTO project_issuances (identity, registry_id, project_id, vintage_start,"
            " vintage_end, event_id) VALUES (?, ?, ?, ?, ?, ?)",
            outcome.issuances,
        )
        many(
            "INSERT INTO rejected_events (registry_id, event_id, reason, message, value,"
            " headers, source, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(*r[:5], pack_headers(r.headers), r.source, r.received_at) for r in outcome.rejected],
        )
        self._record_sequences(outcome)
        for m in outcome.outbox:
            self.outbox_add(*m)

    def _record_sequences(self, outcome: Outcome) -> None:
        """The checked marks and partition marks are never lowered (another instance may
        have raised them); refused numbers at or below the checked mark are settled."""
        checked = {r: max(w.checked, w.through) for r, w in outcome.windows.items()}
        rows = sorted(checked.items())
        self.db.many(
            "INSERT INTO sequence_state (registry_id, high) VALUES (?, ?)"
            " ON CONFLICT (registry_id) DO UPDATE SET high = CASE"
            " WHEN excluded.high > sequence_state.high THEN excluded.high"
            " ELSE sequence_state.high END",
            rows,
        )
        self.db.many("DELETE FROM refused_sequences WHERE registry_id = ? AND sequence <= ?", rows)
        self.db.many(
            "INSERT INTO refused_sequences (registry_id, sequence) VALUES (?, ?)"
            " ON CONFLICT (registry_id, sequence) DO NOTHING",
            sorted({(r, n) for r, n in outcome.refused if n > checked.get(r, 0)}),
        )
        self.db.many(
            "INSERT INTO sequence_marks (registry_id, partition_no, high, raised_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (registry_id, partition_no) DO UPDATE"
            " SET high = excluded.high, raised_at = excluded.raised_at"
            " WHERE excluded.high > sequence_marks.high",
            [
                (r, m.partition, m.high, m.raised_at)
                for r, w in sorted(outcome.windows.items())
                for m in w.marks
            ],
        )

    # -- reads outside the judge ----------------------------------------------------------
    def blocks(self, registry_id: str | None = None) -> list[Block]:
        where, params = ("WHERE registry_id = ?", (registry_id,)) if registry_id else ("", ())
        rows = self.db.execute(
            f"SELECT {BLOCK_COLUMNS} FROM blocks {where} ORDER BY registry_id, series, start_no",
            params,
        ).fetchall()
        return [block_of_row(r) for r in rows]

    def sequence_checked(self, registry_id: str) -> int | None:
        """Through which number a registry's events have arrived or were reported
        missing; None before its first event."""
        row = self.db.execute(
            "SELECT high FROM sequence_state WHERE registry_id = ?", (registry_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def sequence_marks(self, registry_id: str) -> list[Mark]:
        """Per raw partition, the registry's highest number read there."""
        rows = self.db.execute(
            "SELECT partition_no, high, raised_at FROM sequence_marks WHERE registry_id = ?"
            " ORDER BY partition_no",
            (registry_id,),
        ).fetchall()
        return [Mark(int(r[0]), int(r[1]), float(r[2])) for r in rows]

    def sequences_seen(self, registry_id: str, after: int, through: int) -> set[int]:
        """The registry's stored numbers in ``(after, through]`` that arrived: accepted
        and refused events'."""
        rows = self.db.execute(
            "SELECT sequence FROM accepted_events"
            " WHERE registry_id = ? AND sequence > ? AND sequence <= ?"
            " UNION ALL SELECT sequence FROM refused_sequences"
            " WHERE registry_id = ? AND sequence > ? AND sequence <= ?",
            (registry_id, after, through) * 2,
        ).fetchall()
        return {int(r[0]) for r in rows}

    def accepted_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM accepted_events").fetchone()[0])

    # -- rejected events -------------------------------------------------------------------
    def rejected(
        self,
        *,
        registry_id: str | None = None,
        reason: str | None = None,
        since: str | None = None,
        until: str | None = None,
        include_reprocessed: bool = False,
        limit: int = 100,
    ) -> list[RejectedRecord]:
        clauses, params = [], []
        for column, op, value in (
            ("registry_id", "=", registry_id),
            ("reason", "=", reason),
            ("received_at", ">=", since),
            ("received_at", "<", until),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if not include_reprocessed:
            clauses.append("reprocessed_at IS NULL")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.execute(
            "SELECT id, registry_id, event_id, reason, message, value, headers, source,"
            f" received_at, reprocessed_at FROM rejected_events {where} ORDER BY id LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [self._rejected_row(r) for r in rows]

    def rejected_by_id(self, rejected_id: int) -> RejectedRecord | None:
        rows = self.db.execute(
            "SELECT id, registry_id, event_id, reason, message, value, headers, source,"
            " received_at, reprocessed_at FROM rejected_events WHERE id = ?",
            (rejected_id,),
        ).fetchall()
        return None if not rows else self._rejected_row(rows[0])

    @staticmethod
    def _rejected_row(r: Sequence[Any]) -> RejectedRecord:
        return RejectedRecord(
            int(r[0]),
            r[1],
            r[2],
            r[3],
            r[4],
            bytes(r[5]),
            unpack_headers(bytes(r[6])),
            r[7],
            r[8],
            r[9],
        )

    def mark_reprocessed(self, rejected_id: int, at: str) -> None:
        self.db.execute(
            "UPDATE rejected_events SET reprocessed_at = ? WHERE id = ?", (at, rejected_id)
        )

    # -- whole-ledger views ----------------------------------------------------------------
    def records(self) -> list[tuple[Any, ...]]:
        """Every block as stored, in key order: what the digest covers."""
        return [block_row(b) for b in self.blocks()]

    def digest(self) -> str:
        """SHA-256 over every block, in key order: equal ledgers, equal digests."""
        return digest(self.blocks())
