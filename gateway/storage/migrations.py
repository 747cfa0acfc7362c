"""Numbered schema migrations, per store and per backend, recorded in ``schema_version``.

Each store (the gateway's ledger, a Party's ITMO ledger, the international adapter's
store) lists its migrations: a number, a name and the SQL for each backend. Opening a
store applies, in one transaction each, the migrations above the version its database
records, and records the new version; so the next column reaches an existing ledger.
Version 1 of every store is the schema as it was before migrations were numbered,
written with ``IF NOT EXISTS``: a store made then is brought to version 1 unchanged.
Processes opening one database at once (several gateway members) take turns: SQLite's
write lock, PostgreSQL's transaction-level advisory lock.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from gateway.storage.database import Database


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: str
    postgresql: str

    def sql(self, dialect: str) -> str:
        return self.postgresql if dialect == "postgresql" else self.sqlite


_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    component  TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


def current_version(db: Database, component: str) -> int:
    row = db.execute(
        "SELECT version FROM schema_version WHERE component = ?", (component,)
    ).fetchone()
    return int(row[0]) if row else 0


def migrate(db: Database, component: str, migrations: tuple[Migration, ...]) -> int:
    """Apply ``component``'s migrations above its recorded version; its version now."""
    numbers = [m.version for m in migrations]
    if numbers != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations of {component} are not numbered 1..N: {numbers}")
    with db.transaction():
        if db.postgres:  # one process migrates at a time; the others then find it done
            lock = zlib.crc32(component.encode())
            db.execute("SELECT pg_advisory_xact_lock(CAST(? AS BIGINT))", (lock,))
        db.script(_TABLE)
        done = current_version(db, component)
        if done > len(migrations):
            raise RuntimeError(
                f"the {component} database is at schema version {done}, newer than this "
                f"code knows ({len(migrations)}): upgrade the code"
            )
        for migration in migrations[done:]:
            db.script(migration.sql(db.dialect))
            db.execute(
                "INSERT INTO schema_version (component, version, name, applied_at)"
                " VALUES (?, ?, ?, CAST(CURRENT_TIMESTAMP AS TEXT))"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version,"
                " name = excluded.name, applied_at = excluded.applied_at",
                (component, migration.version, migration.name),
            )
    return len(migrations)
