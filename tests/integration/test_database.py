"""The SQL database chosen by URL: what :mod:`gateway.storage.database` adds to SQLite."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

from gateway.storage.database import connect


def test_sqlite_writers_queue_on_the_lock_file(tmp_path: Path) -> None:
    """A writer waits its turn on ``<file>-writers.lock`` (woken by the kernel when the
    lock is released), not in SQLite's busy handler, which polls with growing sleeps."""
    path = tmp_path / "ledger.sqlite"
    db = connect(
        f"sqlite://{path}", sqlite_ddl="CREATE TABLE IF NOT EXISTS t (v INTEGER)", postgres_ddl=""
    )
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
