"""What every store's database offers, whichever the backend, and the set-wise SQL the
stores share (``VALUES`` runs, the ranges query). The backends are
:mod:`gateway.storage.sqlite` and :mod:`gateway.storage.postgres`;
:func:`gateway.storage.open_database` picks one by URL and brings its schema up to date
(:mod:`gateway.storage.migrations`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar


class Database(ABC):
    """A connection to one store's database. Stores write their SQL once, with ``?``
    placeholders; each backend (:mod:`gateway.storage.sqlite`,
    :mod:`gateway.storage.postgres`) says how a transaction starts and how its driver
    takes parameters."""

    dialect = ""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgresql"

    def sql(self, sql: str) -> str:
        """``sql`` in the driver's parameter style."""
        return sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(sql), params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(self.sql(sql), rows)

    @abstractmethod
    def script(self, sql: str) -> None:
        """Run several statements (DDL) inside the current transaction."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All or nothing."""

    def close(self) -> None:
        self.conn.close()


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
