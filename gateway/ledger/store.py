"""The ledger database: SQLite (embedded default) or PostgreSQL, chosen by URL.

One class serves both; only the DDL, the placeholder style and the way a transaction
starts differ. Everything the gateway changes for a batch — blocks, accepted ids and
sequences, rejected events, consumed offsets, the outbox — commits in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .blocks import Block, Status
from .rules import Change
from .schema import POSTGRES, SQLITE

Headers = Sequence[tuple[str, bytes]]

BLOCK_COLUMNS = (
    "registry_id, series, start_no, end_no, project_id, host_party, vintage, "
    "unit_type, account, status, labels, issued_by"
)


def headers_to_text(headers: Headers) -> str:
    return json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers])


def headers_from_text(text: str) -> list[tuple[str, bytes]]:
    return [(k, base64.b64decode(v)) for k, v in json.loads(text)]


def _block(row: Sequence[Any]) -> Block:
    return Block(
        registry_id=row[0],
        series=row[1],
        start=int(row[2]),
        end=int(row[3]),
        project_id=row[4],
        host_party=row[5],
        vintage=int(row[6]),
        unit_type=row[7],
        account=row[8],
        status=Status(row[9]),
        labels=tuple(json.loads(row[10])),
        issued_by=row[11],
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
        json.dumps(list(b.labels)),
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


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class LedgerStore:
    """Open with :func:`open_ledger`. Not thread-safe: one gateway worker thread uses it."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect
        self._in_tx = False

    # -- plumbing ------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(self._sql(sql), params)

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)
        else:
            self._conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[LedgerStore]:
        """All or nothing. The gateway wraps each batch in one."""
        if self._in_tx:
            raise RuntimeError("nested ledger transaction")
        self._in_tx = True
        try:
            if self.dialect == "postgresql":
                with self._conn.transaction():
                    yield self
            else:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        finally:
            self._in_tx = False

    def close(self) -> None:
        self._conn.close()

    def ping(self) -> None:
        self._exec("SELECT 1").fetchone()

    # -- blocks (LedgerView) ---------------------------------------------------------------
    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[Block]:
        # Blocks never overlap, so: those starting inside the range, plus the last one
        # starting before it if it reaches in. Both use the primary key's order.
        rows = self._exec(
            f"SELECT {BLOCK_COLUMNS} FROM blocks WHERE registry_id = ? AND series = ?"
            " AND start_no < ? ORDER BY start_no DESC LIMIT 1",
            (registry_id, series, start),
        ).fetchall()
        before = [r for r in rows if int(r[3]) >= start]
        inside = self._exec(
            f"SELECT {BLOCK_COLUMNS} FROM blocks WHERE registry_id = ? AND series = ?"
            " AND start_no >= ? AND start_no <= ? ORDER BY start_no",
            (registry_id, series, start, end),
        ).fetchall()
        return [_block(r) for r in (*before, *inside)]

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
    def accepted(self, registry_id: str, event_id: str) -> tuple[bytes, int] | None:
        row = self._exec(
            "SELECT value_sha256, position FROM accepted_events"
            " WHERE registry_id = ? AND event_id = ?",
            (registry_id, event_id),
        ).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def sequence_holder(self, registry_id: str, sequence: int) -> str | None:
        row = self._exec(
            "SELECT event_id FROM accepted_events WHERE registry_id = ? AND sequence = ?",
            (registry_id, sequence),
        ).fetchone()
        return None if row is None else str(row[0])

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
        row = self._exec(
            "SELECT high FROM sequence_state WHERE registry_id = ?", (registry_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def set_sequence_high(self, registry_id: str, high: int) -> None:
        self._exec(
            "INSERT INTO sequence_state (registry_id, high) VALUES (?, ?)"
            " ON CONFLICT (registry_id) DO UPDATE SET high = excluded.high",
            (registry_id, high),
        )

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
    ) -> int:
        row = self._exec(
            "INSERT INTO rejected_events (registry_id, event_id, reason, message, value, headers,"
            " source, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                registry_id,
                event_id,
                reason,
                message,
                value,
                headers_to_text(headers),
                source,
                received_at,
            ),
        ).fetchone()
        return int(row[0])

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
            headers_from_text(r[6]),
            r[7],
            r[8],
            r[9],
        )

    def mark_reprocessed(self, rejected_id: int, at: str) -> None:
        self._exec("UPDATE rejected_events SET reprocessed_at = ? WHERE id = ?", (at, rejected_id))

    # -- consumed positions ----------------------------------------------------------------
    def offsets(self, topic: str) -> dict[int, int]:
        rows = self._exec(
            "SELECT partition, next_offset FROM consumer_offsets WHERE topic = ?", (topic,)
        ).fetchall()
        return {int(p): int(o) for p, o in rows}

    def set_offsets(self, topic: str, next_offsets: dict[int, int]) -> None:
        self._many(
            "INSERT INTO consumer_offsets (topic, partition, next_offset) VALUES (?, ?, ?)"
            " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(topic, p, o) for p, o in sorted(next_offsets.items())],
        )

    # -- outbox ----------------------------------------------------------------------------
    def outbox_add(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        self._exec(
            "INSERT INTO outbox (topic, key, value, headers) VALUES (?, ?, ?, ?)",
            (topic, key, value, headers_to_text(headers)),
        )

    def outbox_pending(self, limit: int = 10_000) -> list[OutboxMessage]:
        rows = self._exec(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [
            OutboxMessage(
                int(r[0]),
                r[1],
                None if r[2] is None else bytes(r[2]),
                bytes(r[3]),
                headers_from_text(r[4]),
            )
            for r in rows
        ]

    def outbox_done(self, up_to_id: int) -> None:
        with self.transaction():
            self._exec("DELETE FROM outbox WHERE id <= ?", (up_to_id,))

    # -- whole-ledger views ----------------------------------------------------------------
    def digest(self) -> str:
        """SHA-256 over every block, in key order: equal ledgers, equal digests."""
        h = hashlib.sha256()
        for b in self.blocks():
            h.update(json.dumps(_block_row(b), separators=(",", ":")).encode())
            h.update(b"\n")
        return h.hexdigest()


def open_ledger(url: str) -> LedgerStore:
    """``sqlite:///path/ledger.sqlite`` (or a bare path), or ``postgresql://…``."""
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        with conn.transaction():
            conn.execute(POSTGRES)
        return LedgerStore(conn, "postgresql")
    path = url.removeprefix("sqlite://")  # sqlite:///abs/path → /abs/path
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.executescript(SQLITE)
    return LedgerStore(conn, "sqlite")
