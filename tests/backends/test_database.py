"""The database chosen by URL: each backend, and the numbered migrations every store's
schema goes through (a store made before migrations were numbered is brought up to date)."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from adapters.national.schema import MIGRATIONS as NATIONAL
from adapters.national.store import open_national_store
from gateway.service.ledger.backends import open_ledger
from gateway.service.ledger.schema import MIGRATIONS as LEDGER
from gateway.storage import Migration, open_database
from gateway.storage.migrations import current_version
from tests.conftest import pg_schema_url

TABLE = (
    Migration(
        1,
        "a table",
        "CREATE TABLE IF NOT EXISTS t (v INTEGER)",
        "CREATE TABLE IF NOT EXISTS t (v INTEGER)",
    ),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.sqlite'}"
    return pg_schema_url(request)


def raw(url: str, sql: str) -> None:
    """Run DDL on the database without the product's code (as an older release did)."""
    if url.startswith("sqlite://"):
        conn = sqlite3.connect(url.removeprefix("sqlite://"))
        conn.executescript(sql)
        conn.close()
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)


def test_a_new_database_gets_every_migration_and_records_it(url: str) -> None:
    db = open_database(url, "ledger", LEDGER)
    assert current_version(db, "ledger") == len(LEDGER) == 1
    row = db.execute(
        "SELECT version, name FROM schema_version WHERE component = 'ledger'"
    ).fetchone()
    assert tuple(row) == (1, LEDGER[0].name)
    db.close()


def test_a_later_migration_reaches_an_existing_store(url: str) -> None:
    """The next column reaches a ledger already in use, its rows kept."""
    db = open_database(url, "thing", TABLE)
    with db.transaction():
        db.execute("INSERT INTO t VALUES (7)")
    db.close()
    later = (
        *TABLE,
        Migration(
            2, "a column", "ALTER TABLE t ADD COLUMN w TEXT", "ALTER TABLE t ADD COLUMN w TEXT"
        ),
    )
    db = open_database(url, "thing", later)
    assert current_version(db, "thing") == 2
    assert [tuple(r) for r in db.execute("SELECT v, w FROM t").fetchall()] == [(7, None)]
    db.close()
    # opened again: nothing is applied twice (ADD COLUMN twice would fail)
    open_database(url, "thing", later).close()


def test_a_database_newer_than_the_code_is_refused(url: str) -> None:
    later = (
        *TABLE,
        Migration(
            2, "a column", "ALTER TABLE t ADD COLUMN w TEXT", "ALTER TABLE t ADD COLUMN w TEXT"
        ),
    )
    open_database(url, "thing", later).close()
    with pytest.raises(RuntimeError, match="newer than this code knows"):
        open_database(url, "thing", TABLE)


def test_stores_made_with_the_old_ddl_are_migrated_with_their_rows(url: str) -> None:
    """Stores created before migrations were numbered (the DDL ran on every connect and
    there was no schema_version table) open, are recorded at version 1, and keep their
    rows."""
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    raw(url, LEDGER[0].sql(dialect))
    raw(
        url,
        "INSERT INTO consumer_offsets (topic, partition, next_offset)"
        " VALUES ('crg.registry.events', 0, 42)",
    )
    ledger = open_ledger(url)
    assert current_version(ledger.db, "ledger") == 1
    assert ledger.offsets("crg.registry.events") == {0: 42}
    ledger.close()
    if dialect == "sqlite":  # one database per store on SQLite
        url = url.replace("store.sqlite", "national.sqlite")
    raw(url, NATIONAL[0].sql(dialect))
    national = open_national_store(url, "GHA")
    assert current_version(national.db, "national") == len(NATIONAL)
    national.close()


def test_sqlite_writers_queue_on_the_lock_file(tmp_path: Path) -> None:
    """A writer waits its turn on ``<file>-writers.lock`` (woken by the kernel when the
    lock is released), not in SQLite's busy handler, which polls with growing sleeps."""
    path = tmp_path / "ledger.sqlite"
    db = open_database(f"sqlite://{path}", "test", TABLE)
    other = (tmp_path / "ledger.sqlite-writers.lock").open("ab")
    fcntl.flock(other, fcntl.LOCK_EX)  # another member's transaction
    inside = threading.Event()

    def write() -> None:
        with db.transaction():
            inside.set()
            db.execute("INSERT INTO t VALUES (1)")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not inside.wait(0.3), "the transaction began during another writer's turn"
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
    assert inside.wait(10)
    writer.join(10)
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    # and the turn is given back: another writer gets it at once
    assert fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB) is None
    other.close()
    db.close()
