"""The transactional outbox and the consumed offsets, kept in a consumer's own database.

A consumer writes the messages it will produce, and the next offset of each partition it
read, in the same transaction as its effect. After the commit it produces them; when the
broker has acknowledged them it forgets them (by offset range: one statement per
partition). A crash in between leaves them in the outbox, and whoever owns the partition
next produces them first: the same message may reach the broker twice, never a
different one, and subscribers drop the repeat by its id.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from gateway.storage.database import Database
from gateway.streaming.produce import (
    Headers as Headers,  # re-exported: the outbox's message headers
)


def ddl(binary: str) -> str:
    """The outbox and offsets tables (``binary`` is BLOB or BYTEA)."""
    return f"""
CREATE TABLE IF NOT EXISTS consumer_offsets (
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS outbox (
    source_partition INTEGER NOT NULL,
    source_offset    BIGINT NOT NULL,
    seq              INTEGER NOT NULL,
    topic   TEXT NOT NULL,
    key     {binary},
    value   {binary} NOT NULL,
    headers {binary} NOT NULL,
    PRIMARY KEY (source_partition, source_offset, seq)
);
"""


_LENGTH = struct.Struct(">I").pack


@functools.lru_cache(maxsize=256)
def _header_name(name: str) -> bytes:
    raw = name.encode()
    return struct.pack(">H", len(raw)) + raw


def pack_headers(headers: Headers) -> bytes:
    """Headers as stored: each as name length (2 bytes), name, value length (4), value."""
    parts: list[bytes] = []
    for name, value in headers:
        parts += (_header_name(name), _LENGTH(len(value)), value)
    return b"".join(parts)


def unpack_headers(data: bytes) -> list[tuple[str, bytes]]:
    headers, i = [], 0
    while i < len(data):
        (name_len,) = struct.unpack_from(">H", data, i)
        name = data[i + 2 : i + 2 + name_len].decode()
        i += 2 + name_len
        (value_len,) = struct.unpack_from(">I", data, i)
        headers.append((name, bytes(data[i + 4 : i + 4 + value_len])))
        i += 4 + value_len
    return headers


class OutboxMessage(NamedTuple):
    """A message to produce, keyed by the consumed message that caused it: the
    partition's owner flushes it, and acknowledgements clear it by offset range.
    A tuple: one is built for every message produced."""

    source_partition: int
    source_offset: int
    seq: int  # its place among the messages of that consumed message
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


def through(outbox: Sequence[OutboxMessage]) -> dict[int, int]:
    """The last consumed offset per partition that caused these messages."""
    last: dict[int, int] = {}
    for m in outbox:
        last[m.source_partition] = max(m.source_offset, last.get(m.source_partition, -1))
    return last


class Outbox:
    """Queues messages during a transaction and writes them in one go before it
    commits; reads and clears them outside."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queued: list[OutboxMessage] = []
        self._seqs: dict[tuple[int, int], int] = {}  # next place per consumed message

    def add(
        self,
        partition: int,
        offset: int,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers,
    ) -> None:
        if not self.queued:  # a new transaction
            self._seqs = {}
        seq = self._seqs.get((partition, offset), -1) + 1
        self._seqs[(partition, offset)] = seq
        self.queued.append(OutboxMessage(partition, offset, seq, topic, key, value, headers))

    def write(self) -> list[OutboxMessage]:
        written, self.queued = self.queued, []
        self.db.many(
            "INSERT INTO outbox (source_partition, source_offset, seq, topic, key, value,"
            " headers) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    m.source_partition,
                    m.source_offset,
                    m.seq,
                    m.topic,
                    m.key,
                    m.value,
                    pack_headers(m.headers),
                )
                for m in written
            ],
        )
        return written

    def pending(
        self, partitions: Sequence[int] | None = None, limit: int = 10_000
    ) -> list[OutboxMessage]:
        """Unacknowledged messages in the order they were caused, per partition; only
        those of ``partitions`` if given."""
        where: str = ""
        params: tuple[int, ...] = ()
        if partitions is not None:
            if not partitions:
                return []
            where = f"WHERE source_partition IN ({', '.join('?' * len(partitions))})"
            params = tuple(partitions)
        rows = self.db.execute(
            "SELECT source_partition, source_offset, seq, topic, key, value, headers"
            f" FROM outbox {where} ORDER BY source_partition, source_offset, seq LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [
            OutboxMessage(
                int(r[0]),
                int(r[1]),
                int(r[2]),
                r[3],
                None if r[4] is None else bytes(r[4]),
                bytes(r[5]),
                unpack_headers(bytes(r[6])),
            )
            for r in rows
        ]

    def done(self, upto: Mapping[int, int]) -> None:
        """Forget every message caused by partition p up to offset ``upto[p]``."""
        self.db.many(
            "DELETE FROM outbox WHERE source_partition = ? AND source_offset <= ?",
            sorted(upto.items()),
        )


def offsets(db: Database, topic: str) -> dict[int, int]:
    rows = db.execute(
        "SELECT partition, next_offset FROM consumer_offsets WHERE topic = ?", (topic,)
    ).fetchall()
    return {int(p): int(o) for p, o in rows}


def set_offsets(db: Database, topic: str, next_offsets: Mapping[int, int]) -> None:
    db.many(
        "INSERT INTO consumer_offsets (topic, partition, next_offset) VALUES (?, ?, ?)"
        " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
        [(topic, p, o) for p, o in sorted(next_offsets.items())],
    )
