"""The ledger database: SQLite (embedded default) or PostgreSQL, chosen by URL.

One class serves both; only the DDL, the placeholder style and the way a transaction
starts differ. Everything the gateway changes for a batch — blocks, accepted ids and
sequences, rejected events, consumed offsets, the outbox — commits in one transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..stream.database import Database, connect, overlapping_sql
from ..stream.outbox import Headers, pack_headers
from ..stream.outbox import unpack_headers as unpack_headers
from ..stream.store import TransactionalStore
from .blocks import Block, Status
from .rules import Change
from .schema import POSTGRES, SQLITE

BLOCK_COLUMNS = (
    "registry_id, series, start_no, end_no, project_id, host_party, vintage, "
    "unit_type, account, status, labels, issued_by"
)
_OVERLAPPING = overlapping_sql("blocks", BLOCK_COLUMNS)


_STATUS = {s.value: s for s in Status}


@functools.lru_cache(maxsize=4096)
def _labels(text: str) -> tuple[str, ...]:
    """Blocks share few distinct label sets: parse each once."""
    return tuple(json.loads(text))


@functools.lru_cache(maxsize=4096)
def _labels_text(labels: tuple[str, ...]) -> str:
    return json.dumps(list(labels))


def _block(row: Sequence[Any]) -> Block:
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


def _block_row(b: Block) -> tuple[Any, ...]:
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


class LedgerStore(TransactionalStore):
    """Open with :func:`open_ledger`. Not thread-safe: one gateway worker thread uses it."""

    def __init__(self, db: Database) -> None:
        self._rejected_rows: list[tuple[Any, ...]] = []
        self._highs: dict[str, int] = {}
        self._dirty_highs: set[str] = set()
        super().__init__(db)

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, params)

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.db.many(sql, rows)

    def _begin(self) -> None:
        self._rejected_rows = []
        self._highs, self._dirty_highs = {}, set()

    def _before_commit(self) -> None:
        """Rows queued during the transaction, written in one go before it commits."""
        self._many(
            "INSERT INTO rejected_events (registry_id, event_id, reason, message, value,"
            " headers, source, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self._rejected_rows,
        )
        self._many(
            "INSERT INTO sequence_state (registry_id, high) VALUES (?, ?)"
            " ON CONFLICT (registry_id) DO UPDATE SET high = excluded.high",
            [(r, self._highs[r]) for r in sorted(self._dirty_highs)],
        )

    # -- blocks (LedgerView) ---------------------------------------------------------------
    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[Block]:
        rows = self._exec(
            _OVERLAPPING, (registry_id, series, end, registry_id, series, start, start)
        ).fetchall()
        return [_block(r) for r in rows if r[3] >= start]

    def apply(self, change: Change) -> None:
        self._many(
            "DELETE FROM blocks WHERE registry_id = ? AND series = ? AND start_no = ?",
            [(b.registry_id, b.series, b.start) for b in change.remove],
        )
        self._many(
            f"INSERT INTO blocks ({BLOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_block_row(b) for b in change.add],
        )

    def blocks(self, registry_id: str | None = None) -> list[Block]:
        where, params = ("WHERE registry_id = ?", (registry_id,)) if registry_id else ("", ())
        rows = self._exec(
            f"SELECT {BLOCK_COLUMNS} FROM blocks {where} ORDER BY registry_id, series, start_no",
            params,
        ).fetchall()
        return [_block(r) for r in rows]

    # -- event identity and order ----------------------------------------------------------
    def identity_clash(
        self, registry_id: str, event_id: str, sequence: int
    ) -> tuple[tuple[bytes, int] | None, str | None]:
        """In one query: (sha256, position) if this event id was accepted, and the event id
        already holding this sequence number, if any."""
        rows = self._exec(
            "SELECT event_id, value_sha256, position, sequence FROM accepted_events"
            " WHERE registry_id = ? AND (event_id = ? OR sequence = ?)",
            (registry_id, event_id, sequence),
        ).fetchall()
        seen = next(((bytes(r[1]), int(r[2])) for r in rows if r[0] == event_id), None)
        holder = next((str(r[0]) for r in rows if int(r[3]) == sequence), None)
        return seen, holder

    def record_accepted(
        self, registry_id: str, event_id: str, sha256: bytes, sequence: int, source: str
    ) -> int:
        row = self._exec(
            "INSERT INTO accepted_events (registry_id, event_id, value_sha256, sequence, source)"
            " VALUES (?, ?, ?, ?, ?) RETURNING position",
            (registry_id, event_id, sha256, sequence, source),
        ).fetchone()
        return int(row[0])

    def sequence_high(self, registry_id: str) -> int:
        if registry_id in self._highs:
            return self._highs[registry_id]
        row = self._exec(
            "SELECT high FROM sequence_state WHERE registry_id = ?", (registry_id,)
        ).fetchone()
        high = 0 if row is None else int(row[0])
        if self._in_tx:
            self._highs[registry_id] = high
        return high

    def set_sequence_high(self, registry_id: str, high: int) -> None:
        """Kept in memory and written once when the transaction commits."""
        if not self._in_tx:
            raise RuntimeError("set_sequence_high outside a ledger transaction")
        self._highs[registry_id] = high
        self._dirty_highs.add(registry_id)

    def accepted_count(self) -> int:
        return int(self._exec("SELECT count(*) FROM accepted_events").fetchone()[0])

    # -- cross-registry project identity -------------------------------------------------
    def issuances_of_identity(self, identity: str) -> list[tuple[str, str, str, str, str]]:
        rows = self._exec(
            "SELECT registry_id, project_id, vintage_start, vintage_end, event_id"
            " FROM project_issuances WHERE identity = ?",
            (identity,),
        ).fetchall()
        return [tuple(str(v) for v in r) for r in rows]  # type: ignore[misc]

    def record_issuance_identity(
        self,
        identity: str,
        registry_id: str,
        project_id: str,
        vintage_start: str,
        vintage_end: str,
        event_id: str,
    ) -> None:
        self._exec(
            "INSERT INTO project_issuances (identity, registry_id, project_id, vintage_start,"
            " vintage_end, event_id) VALUES (?, ?, ?, ?, ?, ?)",
            (identity, registry_id, project_id, vintage_start, vintage_end, event_id),
        )

    # -- rejected events -------------------------------------------------------------------
    def record_rejected(
        self,
        *,
        registry_id: str | None,
        event_id: str | None,
        reason: str,
        message: str,
        value: bytes,
        headers: Headers,
        source: str,
        received_at: str,
    ) -> None:
        """Queued and written when the transaction commits; at once outside one."""
        row = (
            registry_id,
            event_id,
            reason,
            message,
            value,
            pack_headers(headers),
            source,
            received_at,
        )
        if self._in_tx:
            self._rejected_rows.append(row)
            return
        with self.transaction():
            self._rejected_rows.append(row)

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
        rows = self._exec(
            "SELECT id, registry_id, event_id, reason, message, value, headers, source,"
            f" received_at, reprocessed_at FROM rejected_events {where} ORDER BY id LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [self._rejected_row(r) for r in rows]

    def rejected_by_id(self, rejected_id: int) -> RejectedRecord | None:
        rows = self._exec(
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
        self._exec("UPDATE rejected_events SET reprocessed_at = ? WHERE id = ?", (at, rejected_id))

    # -- whole-ledger views ----------------------------------------------------------------
    def records(self) -> list[tuple[Any, ...]]:
        """Every block as stored, in key order: what the digest covers."""
        return [_block_row(b) for b in self.blocks()]

    def digest(self) -> str:
        """SHA-256 over every block, in key order: equal ledgers, equal digests."""
        h = hashlib.sha256()
        for b in self.blocks():
            h.update(json.dumps(_block_row(b), separators=(",", ":")).encode())
            h.update(b"\n")
        return h.hexdigest()


def open_ledger(url: str) -> LedgerStore:
    """``sqlite:///path/ledger.sqlite`` (or a bare path), or ``postgresql://…``."""
    return LedgerStore(connect(url, sqlite_ddl=SQLITE, postgres_ddl=POSTGRES))
