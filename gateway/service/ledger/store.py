"""The ledger database: SQLite (embedded default) or PostgreSQL, chosen by URL.

One class serves both; only the DDL, the placeholder style and the way a transaction
starts differ. Everything the gateway changes for a batch — blocks, accepted ids and
sequences, rejected events, consumed offsets, the outbox — commits in one transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.ranges import NO_RANGE, Range, StagedBlocks
from gateway.service.ledger.blocks import Block, Status
from gateway.service.ledger.rules import Change
from gateway.service.ledger.schema import MIGRATIONS
from gateway.service.ledger.sequences import Mark
from gateway.service.ledger.staged import Issuance, StagedIdentities, StagedIssuances
from gateway.storage import open_database
from gateway.storage.database import (
    Database,
    chunks,
    of,
    ranges_sql,
    values_list,
    wanted_ranges,
)
from gateway.storage.outbox import Headers, pack_headers
from gateway.storage.outbox import unpack_headers as unpack_headers
from gateway.storage.tracking import TransactionalStore

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


@functools.lru_cache(maxsize=64)
def _blocks_of_ranges(n: int, postgres: bool) -> str:
    """Blocks sharing a unit with any of ``n`` ranges, one index walk per range.

    SQLite: on the primary key (:func:`ranges_sql`). PostgreSQL: the exclusion
    constraint's GiST index answers range overlap itself; the lateral join (kept apart
    by ``OFFSET 0``) stops the planner from hashing the ranges against every block of a
    registry when its statistics still describe an empty table."""
    if not postgres:
        return ranges_sql("blocks", BLOCK_COLUMNS, n)
    return (
        f"{wanted_ranges(n)} SELECT {of('b', BLOCK_COLUMNS)} FROM wanted w"
        " CROSS JOIN LATERAL (SELECT * FROM blocks x"
        " WHERE x.registry_id = w.registry_id AND x.series = w.series"
        " AND int8range(x.start_no, x.end_no, '[]') && int8range(w.lo, w.hi, '[]')"
        " OFFSET 0) b"
    )


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
    """Open with :func:`open_ledger`. Not thread-safe: a gateway process uses it from its
    event loop.

    Inside a transaction, blocks, accepted ids and project identities are read set-wise
    (:meth:`read_ahead`), judged against in memory and written in bulk at commit
    (:mod:`gateway.service.ledger.staged`); outside one, reads go to the database.
    """

    def __init__(self, db: Database) -> None:
        self._rejected_rows: list[tuple[Any, ...]] = []
        self._checked: dict[str, int | None] = {}
        self._dirty_checked: set[str] = set()
        self._marks: dict[str, list[Mark]] = {}
        self._dirty_marks: set[str] = set()
        self._refused: set[tuple[str, int]] = set()
        self._positions: list[int] = []
        self._next_sqlite_position: int | None = None
        self._expected_accepts = 1
        self._blocks: StagedBlocks[Block] = StagedBlocks()
        self._identities = StagedIdentities()
        self._issuances = StagedIssuances()
        super().__init__(db)

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, params)

    def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.db.many(sql, rows)

    def _begin(self) -> None:
        self._rejected_rows = []
        self._checked, self._dirty_checked = {}, set()
        self._marks, self._dirty_marks, self._refused = {}, set(), set()
        self._positions, self._next_sqlite_position, self._expected_accepts = [], None, 1
        self._blocks = StagedBlocks[Block]()
        self._identities = StagedIdentities()
        self._issuances = StagedIssuances()

    def _before_commit(self) -> None:
        """The transaction's net changes, written in one go before it commits; deletions
        first, so that PostgreSQL's exclusion constraint sees no passing overlap."""
        self._many(
            "DELETE FROM blocks WHERE registry_id = ? AND series = ? AND start_no = ?",
            list(self._blocks.deleted),
        )
        self._many(
            f"INSERT INTO blocks ({BLOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_block_row(b) for b in self._blocks.added.values()],
        )
        overriding = " OVERRIDING SYSTEM VALUE" if self.db.postgres else ""
        self._many(
            "INSERT INTO accepted_events (position, registry_id, event_id, value_sha256,"
            f" sequence, source){overriding} VALUES (?, ?, ?, ?, ?, ?)",
            self._identities.rows,
        )
        self._many(
            "INSERT INTO project_issuances (identity, registry_id, project_id, vintage_start,"
            " vintage_end, event_id) VALUES (?, ?, ?, ?, ?, ?)",
            self._issuances.rows,
        )
        self._many(
            "INSERT INTO rejected_events (registry_id, event_id, reason, message, value,"
            " headers, source, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self._rejected_rows,
        )
        self._write_sequences()

    def _write_sequences(self) -> None:
        checked = [
            (r, c) for r in sorted(self._dirty_checked) if (c := self._checked[r]) is not None
        ]
        self._many(
            "INSERT INTO sequence_state (registry_id, high) VALUES (?, ?)"
            " ON CONFLICT (registry_id) DO UPDATE SET high = CASE"
            " WHEN excluded.high > sequence_state.high THEN excluded.high"
            " ELSE sequence_state.high END",
            checked,
        )
        self._many(  # numbers at or below the checked mark are settled
            "DELETE FROM refused_sequences WHERE registry_id = ? AND sequence <= ?", checked
        )
        self._many(
            "INSERT INTO refused_sequences (registry_id, sequence) VALUES (?, ?)"
            " ON CONFLICT (registry_id, sequence) DO NOTHING",
            [(r, n) for r, n in sorted(self._refused) if n > (self._checked.get(r) or 0)],
        )
        self._many(
            "INSERT INTO sequence_marks (registry_id, partition_no, high, raised_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (registry_id, partition_no) DO UPDATE"
            " SET high = excluded.high, raised_at = excluded.raised_at"
            " WHERE excluded.high > sequence_marks.high",
            [
                (r, m.partition, m.high, m.raised_at)
                for r in sorted(self._dirty_marks)
                for m in self._marks[r]
            ],
        )

    def read_ahead(
        self,
        ranges: Iterable[Range],
        identities: Iterable[tuple[str, str, int]],
        project_identities: Iterable[str],
    ) -> None:
        """Read, in a few queries, what judging a batch may ask: the blocks of every
        (registry, series, first, last) range, the accepted (registry, event id,
        sequence) clashes and the issuances of each project identity."""
        self._require_transaction("read_ahead")
        self._blocks.read(ranges, self._stored_blocks)
        asked = [i for i in dict.fromkeys(identities) if not self._identities.knows(*i)]
        self._identities.load(asked, self._stored_identities(asked))
        known = self._issuances.by_identity
        unread = [i for i in dict.fromkeys(project_identities) if i not in known]
        self._issuances.load(unread, self._stored_issuances(unread))
        self._expected_accepts = max(len(asked), 1)

    # -- blocks (LedgerView) ---------------------------------------------------------------
    def _stored_blocks(self, ranges: list[Range]) -> Iterator[Block]:
        """Stored blocks sharing a unit with any of the ranges (a block may come twice)."""
        for chunk in chunks(ranges, NO_RANGE):
            rows = self._exec(
                _blocks_of_ranges(len(chunk), self.db.postgres), [v for r in chunk for v in r]
            )
            yield from (_block(row) for row in rows.fetchall())

    def overlapping(self, registry_id: str, series: str, start: int, end: int) -> list[Block]:
        staged = self._blocks if self._in_tx else StagedBlocks[Block]()
        return staged.overlapping((registry_id, series, start, end), self._stored_blocks)

    def apply(self, change: Change) -> None:
        self._require_transaction("apply")
        self._blocks.apply(change.remove, change.add)

    def blocks(self, registry_id: str | None = None) -> list[Block]:
        where, params = ("WHERE registry_id = ?", (registry_id,)) if registry_id else ("", ())
        rows = self._exec(
            f"SELECT {BLOCK_COLUMNS} FROM blocks {where} ORDER BY registry_id, series, start_no",
            params,
        ).fetchall()
        return [_block(r) for r in rows]

    # -- event identity and order ----------------------------------------------------------
    def _stored_identities(
        self, asked: list[tuple[str, str, int]]
    ) -> Iterator[tuple[str, str, bytes, int, int]]:
        for chunk in chunks(asked, ("", "", -1)):
            rows = self._exec(_identities_of(len(chunk)), [v for a in chunk for v in a])
            for r in rows.fetchall():
                yield str(r[0]), str(r[1]), bytes(r[2]), int(r[3]), int(r[4])

    def identity_clash(
        self, registry_id: str, event_id: str, sequence: int
    ) -> tuple[tuple[bytes, int] | None, str | None]:
        """(sha256, position) if this event id was accepted, and the event id already
        holding this sequence number, if any."""
        asked = [(registry_id, event_id, sequence)]
        staged = self._identities if self._in_tx else StagedIdentities()
        if not staged.knows(registry_id, event_id, sequence):
            staged.load(asked, self._stored_identities(asked))
        return staged.clash(registry_id, event_id, sequence)

    def record_accepted(
        self, registry_id: str, event_id: str, sha256: bytes, sequence: int, source: str
    ) -> int:
        """Return the event's ledger position; the row is written at commit."""
        self._require_transaction("record_accepted")
        if not self._positions:
            self._positions = self._reserve_positions(self._expected_accepts)
        position = self._positions.pop()
        self._identities.accept(position, registry_id, event_id, sha256, sequence, source)
        return position

    def _reserve_positions(self, n: int) -> list[int]:
        """``n`` unused ledger positions, the next one last (for ``pop``)."""
        if self.db.postgres:
            rows = self._exec(
                "SELECT nextval(pg_get_serial_sequence('accepted_events', 'position'))"
                " FROM generate_series(1, ?)",
                (n,),
            ).fetchall()
            return sorted((int(r[0]) for r in rows), reverse=True)
        if self._next_sqlite_position is None:  # the write lock is held: nobody else inserts
            row = self._exec("SELECT coalesce(max(position), 0) FROM accepted_events").fetchone()
            self._next_sqlite_position = int(row[0]) + 1
        first = self._next_sqlite_position
        self._next_sqlite_position += n
        return list(range(first + n - 1, first - 1, -1))

    # -- sequence numbers (gateway/service/ledger/sequences.py) ------------------------------------
    def sequence_checked(self, registry_id: str) -> int | None:
        """Through which number a registry's events have arrived or were reported
        missing; None before its first event. In a PostgreSQL transaction the registry's
        row stays locked until commit, so instances sharing the ledger check a registry
        one after the other, each seeing what the other committed."""
        if registry_id in self._checked:
            return self._checked[registry_id]
        lock = " FOR UPDATE" if self._in_tx and self.db.postgres else ""
        row = self._exec(
            f"SELECT high FROM sequence_state WHERE registry_id = ?{lock}", (registry_id,)
        ).fetchone()
        checked = None if row is None else int(row[0])
        if self._in_tx:
            self._checked[registry_id] = checked
        return checked

    def set_sequence_checked(self, registry_id: str, through: int) -> None:
        """Kept in memory and written when the transaction commits; a stored mark is never
        lowered."""
        self._require_transaction("set_sequence_checked")
        self._checked[registry_id] = through
        self._dirty_checked.add(registry_id)

    def sequence_marks(self, registry_id: str) -> list[Mark]:
        """Per raw partition, the registry's highest number read there."""
        if registry_id in self._marks:
            return list(self._marks[registry_id])
        rows = self._exec(
            "SELECT partition_no, high, raised_at FROM sequence_marks WHERE registry_id = ?"
            " ORDER BY partition_no",
            (registry_id,),
        ).fetchall()
        marks = [Mark(int(r[0]), int(r[1]), float(r[2])) for r in rows]
        if self._in_tx:
            self._marks[registry_id] = marks
        return list(marks)

    def set_sequence_marks(self, registry_id: str, marks: Iterable[Mark]) -> None:
        """Written at commit; a partition's stored mark is never lowered."""
        self._require_transaction("set_sequence_marks")
        self._marks[registry_id] = list(marks)
        self._dirty_marks.add(registry_id)

    def record_refused_sequence(self, registry_id: str, sequence: int) -> None:
        """An authentic event the ledger refused: its number arrived all the same."""
        self._require_transaction("record_refused_sequence")
        self._refused.add((registry_id, sequence))

    def sequences_seen(self, registry_id: str, after: int, through: int) -> set[int]:
        """The registry's numbers in ``(after, through]`` that arrived: accepted and
        refused events', stored and of this transaction."""
        rows = self._exec(
            "SELECT sequence FROM accepted_events"
            " WHERE registry_id = ? AND sequence > ? AND sequence <= ?"
            " UNION ALL SELECT sequence FROM refused_sequences"
            " WHERE registry_id = ? AND sequence > ? AND sequence <= ?",
            (registry_id, after, through) * 2,
        ).fetchall()
        seen = {int(r[0]) for r in rows}
        if self._in_tx:
            seen.update(self._identities.held(registry_id, after, through))
            seen.update(n for r, n in self._refused if r == registry_id and after < n <= through)
        return seen

    def accepted_count(self) -> int:
        return int(self._exec("SELECT count(*) FROM accepted_events").fetchone()[0])

    # -- cross-registry project identity -------------------------------------------------
    def _stored_issuances(self, identities: list[str]) -> Iterator[tuple[str, Issuance]]:
        for chunk in chunks(identities, ""):
            rows = self._exec(_issuances_of(len(chunk)), chunk)
            for r in rows.fetchall():
                yield str(r[0]), (str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]))

    def issuances_of_identity(self, identity: str) -> list[Issuance]:
        """(registry, project, vintage start, vintage end, event id) of every issuance
        of projects with this normalised identity."""
        staged = self._issuances if self._in_tx else StagedIssuances()
        if identity not in staged.by_identity:
            staged.load([identity], self._stored_issuances([identity]))
        return list(staged.by_identity[identity])

    def record_issuance_identity(
        self,
        identity: str,
        registry_id: str,
        project_id: str,
        vintage_start: str,
        vintage_end: str,
        event_id: str,
    ) -> None:
        self._require_transaction("record_issuance_identity")
        self.issuances_of_identity(identity)  # stored ones first, so none is shadowed
        self._issuances.record(
            identity, (registry_id, project_id, vintage_start, vintage_end, event_id)
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
    return LedgerStore(open_database(url, "ledger", MIGRATIONS))
