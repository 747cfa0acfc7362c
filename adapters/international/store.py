"""The international-registry adapter's store: the registry's final answer to each
action (the tracking record), the consumed offsets and the outbox of refused actions,
in one transaction per batch. SQLite (default) or PostgreSQL, chosen by URL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.international.client import Outcome
from gateway.contract.time import utc_now
from gateway.storage import open_database
from gateway.storage.database import Database
from gateway.storage.migrations import Migration
from gateway.storage.outbox import ddl as outbox_ddl
from gateway.storage.tracking import TransactionalStore

_TABLES = """
CREATE TABLE IF NOT EXISTS submitted_actions (
    action_id   TEXT PRIMARY KEY,
    party       TEXT NOT NULL,
    action_type TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    status      INTEGER NOT NULL,
    answer      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    source      TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submitted_actions_outcome ON submitted_actions (outcome, party);
"""


@dataclass(frozen=True)
class Submitted:
    action_id: str
    party: str
    action_type: str
    outcome: str
    status: int
    answer: dict[str, Any]
    attempts: int
    source: str
    recorded_at: str


def _held(binary: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS held_actions (
    party      TEXT NOT NULL,
    partition  INTEGER NOT NULL,
    offset_no  BIGINT NOT NULL,
    source     TEXT NOT NULL,
    action_id  TEXT NOT NULL,
    value      {binary} NOT NULL,
    held_since DOUBLE PRECISION NOT NULL,  -- Unix seconds
    PRIMARY KEY (party, partition, offset_no)
);
"""


#: the adapter's store, version by version (:mod:`gateway.storage.migrations`)
MIGRATIONS = (
    Migration(
        1,
        "the international adapter's store as of the first release",
        _TABLES + outbox_ddl("BLOB"),
        _TABLES + outbox_ddl("BYTEA"),
    ),
    Migration(
        2,
        "actions held until the actions of another Party they follow are answered",
        _held("BLOB"),
        _held("BYTEA"),
    ),
)


@dataclass(frozen=True)
class Held:
    """An action consumed but held back, in its Party's order, until what it follows is
    answered (:func:`gateway.contract.itmo.causes`)."""

    party: str
    partition: int
    offset: int
    source: str
    action_id: str
    value: bytes
    held_since: float


class InternationalStore(TransactionalStore):
    # -- actions held back (causal order across Parties) -------------------------------------
    def hold(self, held: Iterable[Held]) -> None:
        self._require_transaction("hold")
        self.db.many(
            "INSERT INTO held_actions (party, partition, offset_no, source, action_id, value,"
            " held_since) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(h.party, h.partition, h.offset, h.source, h.action_id, h.value, h.held_since)
             for h in held],
        )  # fmt: skip

    def held(self) -> list[Held]:
        """Every held action, each Party's in the order they were consumed."""
        rows = self.db.execute(
            "SELECT party, partition, offset_no, source, action_id, value, held_since"
            " FROM held_actions ORDER BY party, partition, offset_no"
        ).fetchall()
        return [Held(str(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), bytes(r[5]),
                     float(r[6])) for r in rows]  # fmt: skip

    def release(self, held: Iterable[Held]) -> None:
        self._require_transaction("release")
        self.db.many(
            "DELETE FROM held_actions WHERE party = ? AND partition = ? AND offset_no = ?",
            [(h.party, h.partition, h.offset) for h in held],
        )

    def held_count(self) -> int:
        (n,) = self.db.execute("SELECT count(*) FROM held_actions").fetchone()
        return int(n)

    def known(self, action_ids: Sequence[str]) -> set[str]:
        """Which of these actions already have a final answer."""
        found: set[str] = set()
        ids = list(dict.fromkeys(action_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self.db.execute(
                "SELECT action_id FROM submitted_actions WHERE action_id IN"
                f" ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            found.update(str(r[0]) for r in rows)
        return found

    def record(
        self,
        action_id: str,
        party: str,
        action_type: str,
        outcome: Outcome,
        attempts: int,
        source: str,
    ) -> None:
        self._require_transaction("record")
        now = utc_now()
        self.db.execute(
            "INSERT INTO submitted_actions (action_id, party, action_type, outcome, status,"
            " answer, attempts, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                action_id,
                party,
                action_type,
                outcome.outcome,
                outcome.status,
                json.dumps(outcome.answer, sort_keys=True),
                attempts,
                source,
                now,
            ),
        )

    def submitted(
        self, *, outcome: str | None = None, party: str | None = None, limit: int = 100
    ) -> list[Submitted]:
        clauses, params = [], []
        for column, value in (("outcome", outcome), ("party", party)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.db.execute(
            "SELECT action_id, party, action_type, outcome, status, answer, attempts, source,"
            f" recorded_at FROM submitted_actions {where} ORDER BY recorded_at, action_id"
            " LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [
            Submitted(r[0], r[1], r[2], r[3], int(r[4]), json.loads(r[5]), int(r[6]), r[7], r[8])
            for r in rows
        ]

    def records(self) -> list[tuple[Any, ...]]:
        """Each action's final answer, by action id (the time recorded left out)."""
        rows = self.db.execute(
            "SELECT action_id, party, action_type, outcome, status, answer FROM"
            " submitted_actions ORDER BY action_id"
        ).fetchall()
        return [tuple(r) for r in rows]

    def digest(self) -> str:
        h = hashlib.sha256()
        for r in self.records():
            h.update(json.dumps(list(r), separators=(",", ":")).encode() + b"\n")
        return h.hexdigest()

    def counts(self) -> dict[str, int]:
        rows: Iterable[Any] = self.db.execute(
            "SELECT outcome, count(*) FROM submitted_actions GROUP BY outcome"
        ).fetchall()
        return {str(o): int(n) for o, n in rows}


def open_international_store(url: str) -> InternationalStore:
    return InternationalStore(open_database(url, "international", MIGRATIONS))


__all__ = ["Database", "InternationalStore", "Submitted", "open_international_store"]
