"""Storage: a database chosen by URL, one module per backend (:mod:`.sqlite`,
:mod:`.postgres`), numbered migrations (:mod:`.migrations`), the outbox and the consumed
offsets every consumer's store commits with its effect (:mod:`.outbox`, :mod:`.tracking`)."""

from __future__ import annotations

from gateway.storage.database import Database
from gateway.storage.migrations import Migration, migrate
from gateway.storage.postgres import connect_postgres
from gateway.storage.sqlite import connect_sqlite

__all__ = ["Database", "Migration", "open_database"]


def open_database(url: str, component: str, migrations: tuple[Migration, ...]) -> Database:
    """``sqlite:///path/file.sqlite`` (or a bare path), or ``postgresql://…``, with the
    schema of ``component`` brought up to date."""
    if url.startswith(("postgresql://", "postgres://")):
        db: Database = connect_postgres(url)
    else:
        db = connect_sqlite(url)
    try:
        migrate(db, component, migrations)
    except BaseException:
        db.close()
        raise
    return db
