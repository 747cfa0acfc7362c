"""The publisher's journal: which event ids got which sequence numbers, and which were acked.

A registry must never publish two different byte strings under one event id. The
journal makes ``crg publish`` safe to re-run: an event already journaled keeps its
sequence number, so it is re-signed to the very same bytes (Ed25519 is deterministic),
a harmless repeat downstream rather than a conflict.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sequence_state (
    registry_id   TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS published (
    registry_id TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    acked       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (registry_id, event_id)
);
"""


class PublishJournal:
    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def lookup(self, registry_id: str, event_id: str) -> tuple[int, bool] | None:
        """(sequence, acked) of a journaled event, or None."""
        row = self._db.execute(
            "SELECT sequence, acked FROM published WHERE registry_id = ? AND event_id = ?",
            (registry_id, event_id),
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def acked(self, registry_id: str) -> int:
        """How many of the registry's events the broker acknowledged."""
        row = self._db.execute(
            "SELECT count(*) FROM published WHERE registry_id = ? AND acked", (registry_id,)
        ).fetchone()
        return int(row[0])

    def last_sequence(self, registry_id: str) -> int:
        row = self._db.execute(
            "SELECT last_sequence FROM sequence_state WHERE registry_id = ?", (registry_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def reserve(self, entries: list[tuple[str, str, int]]) -> None:
        """Record (registry, event id, sequence) before sending, in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO published (registry_id, event_id, sequence) VALUES (?, ?, ?)"
                " ON CONFLICT (registry_id, event_id) DO NOTHING",
                entries,
            )
            self._db.executemany(
                "INSERT INTO sequence_state (registry_id, last_sequence) VALUES (?, ?)"
                " ON CONFLICT (registry_id) DO UPDATE SET"
                " last_sequence = max(last_sequence, excluded.last_sequence)",
                [(registry, sequence) for registry, _, sequence in entries],
            )

    def mark_acked(self, entries: list[tuple[str, str]]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE published SET acked = 1 WHERE registry_id = ? AND event_id = ?", entries
            )
