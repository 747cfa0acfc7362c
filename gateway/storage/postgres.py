"""The PostgreSQL backend: one autocommit connection, explicit transactions, and the
stores' ``?`` placeholders given to psycopg as ``%s``."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from gateway.storage.database import Database


@functools.lru_cache(maxsize=1024)
def _pyformat(sql: str) -> str:
    """A store's SQL with psycopg's placeholders (each text converted once)."""
    return sql.replace("?", "%s")


class PostgresDatabase(Database):
    dialect = "postgresql"

    def sql(self, sql: str) -> str:
        return _pyformat(sql)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(self.sql(sql), rows)

    def script(self, sql: str) -> None:
        self.conn.execute(sql)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield


def connect_postgres(url: str) -> PostgresDatabase:
    """``postgresql://…`` (or ``postgres://…``)."""
    return PostgresDatabase(psycopg.connect(url, autocommit=True))
