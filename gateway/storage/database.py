"""A SQL database chosen by URL: SQLite (embedded default) or PostgreSQL.

Only the DDL, the placeholder style and the way a transaction starts differ; stores are
written once against :class:`Database`.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import psycopg


class Database:
    def __init__(self, conn: Any, dialect: str, writers_lock: Path | None = None) -> None:
        self.conn = conn
        self.dialect = dialect
        self._writers: IO[bytes] | None = None if writers_lock is None else writers_lock.open("ab")

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(sql), params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.postgres:
            with self.conn.cursor() as cur:
                cur.executemany(self.sql(sql), rows)
        else:
            self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; SQLite takes the write lock at once (no upgrade deadlocks)."""
        if self.postgres:
            with self.conn.transaction():
                yield
            return
        with self._writers_turn():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def _writers_turn(self) -> Iterator[None]:
        """Writers of one SQLite file queue on a lock file: the kernel wakes the next one
        the moment the lock is released. SQLite's own busy handler polls with sleeps
        growing to 100 ms, which put 50–100 ms on the tail latency of gateway members
        sharing a ledger. SQLite's locking still guards correctness."""
        if self._writers is None:
            yield
            return
        fcntl.flock(self._writers, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writers, fcntl.LOCK_UN)

    def close(self) -> None:
        self.conn.close()
        if self._writers is not None:
            self._writers.close()


T = TypeVar("T")

VALUES_CHUNK = 512  # rows of a VALUES list: well inside every parameter limit


def chunks(items: Sequence[T], filler: T) -> Iterator[list[T]]:
    """``items`` in runs of at most :data:`VALUES_CHUNK`, one set-wise query each, each
    padded with ``filler`` (a row that matches nothing) to a power of two. A connection
    keeps a prepared statement per distinct SQL text, and one per run length (up to 128
    of them, each with a long ``VALUES`` list) grew the national adapter by 23 MB over
    100,000 events; padded, a query has at most ten texts."""
    for i in range(0, len(items), VALUES_CHUNK):
        run = list(items[i : i + VALUES_CHUNK])
        yield run + [filler] * (min(1 << (len(run) - 1).bit_length(), VALUES_CHUNK) - len(run))


def values_list(n: int, *types: str) -> str:
    """``n`` rows of parameters for a ``VALUES`` list, each cast to its column's type
    (a parameter's own type would otherwise decide how PostgreSQL compares it)."""
    row = "(" + ", ".join(f"CAST(? AS {t})" for t in types) + ")"
    return ", ".join([row] * n)


def wanted_ranges(n: int) -> str:
    """``WITH wanted (registry_id, series, lo, hi)``: ``n`` ranges given as parameters
    (registry, series, first and last unit of each)."""
    return (
        "WITH wanted (registry_id, series, lo, hi) AS"
        f" (VALUES {values_list(n, 'TEXT', 'TEXT', 'BIGINT', 'BIGINT')})"
    )


def of(alias: str, columns: str) -> str:
    """``columns`` (comma-separated) qualified by a table alias."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


def ranges_sql(table: str, columns: str, n: int) -> str:
    """Rows of ``table`` — non-overlapping inclusive ranges keyed by (registry_id,
    series, start_no) — sharing a unit with any of ``n`` :func:`wanted_ranges`, in one
    query: per range, from the last row starting at or before it to the last starting
    inside it, on the primary key. A row may come once per range it shares units with."""
    return (
        f"{wanted_ranges(n)} SELECT {of('b', columns)} FROM wanted w JOIN {table} b"
        " ON b.registry_id = w.registry_id AND b.series = w.series AND b.start_no <= w.hi"
        " AND b.end_no >= w.lo AND b.start_no >= coalesce((SELECT max(x.start_no)"
        f" FROM {table} x WHERE x.registry_id = w.registry_id AND x.series = w.series"
        " AND x.start_no <= w.lo), w.lo)"
    )


def connect(url: str, *, sqlite_ddl: str, postgres_ddl: str) -> Database:
    """``sqlite:///path/file.sqlite`` (or a bare path), or ``postgresql://…``; creates
    the tables if they do not exist."""
    if url.startswith(("postgresql://", "postgres://")):
        pg = psycopg.connect(url, autocommit=True)
        with pg.transaction():
            pg.execute(postgres_ddl)
        return Database(pg, "postgresql")
    path = url.removeprefix("sqlite://")  # sqlite:///abs/path → /abs/path
    writers_lock = None
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writers_lock = Path(f"{path}-writers.lock")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.executescript(sqlite_ddl)
    return Database(conn, "sqlite", writers_lock)
