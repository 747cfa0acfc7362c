"""The base of every consumer's store: one database, transactions that also write the
queued outbox, the consumed offsets and the outbox API the consumer process needs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Self

from gateway.storage.database import Database
from gateway.storage.outbox import Headers, Outbox, OutboxMessage, offsets, set_offsets


class TransactionalStore:
    """Subclasses add their tables and may queue writes until commit (:meth:`_begin`
    resets what they queue, :meth:`_before_commit` writes it). Not thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self._in_tx = False
        self._outbox = Outbox(db)
        #: what the last committed transaction put in the outbox, in order
        self.last_outbox: list[OutboxMessage] = []

    def _begin(self) -> None:
        """Forget anything queued (a transaction starts or ends)."""

    def _before_commit(self) -> None:
        """Write what was queued during the transaction."""

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """All or nothing: the effect, the offsets and the outbox together."""
        if self._in_tx:
            raise RuntimeError("nested transaction")
        self._in_tx = True
        self._outbox.queued = []
        self._begin()
        try:
            with self.db.transaction():
                yield self
                self._before_commit()
                written = self._outbox.write()
            self.last_outbox = written
        finally:
            self._in_tx = False
            self._outbox.queued = []
            self._begin()

    def _require_transaction(self, what: str) -> None:
        if not self._in_tx:
            raise RuntimeError(f"{what} outside a transaction")

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        self.db.execute("SELECT 1").fetchone()

    # -- consumed positions and the outbox (see gateway.storage.outbox) ---------------------
    def offsets(self, topic: str) -> dict[int, int]:
        return offsets(self.db, topic)

    def set_offsets(self, topic: str, next_offsets: dict[int, int]) -> None:
        set_offsets(self.db, topic, next_offsets)

    def forget_offsets(self, topic: str) -> None:
        """Drop the stored positions on ``topic`` (its partitions were recreated empty)."""
        with self.transaction():
            self.db.execute("DELETE FROM consumer_offsets WHERE topic = ?", (topic,))

    def outbox_add(
        self,
        partition: int,
        offset: int,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers,
    ) -> None:
        """Queue a message caused by consumed message ``partition``/``offset``; written,
        in order, when the transaction commits."""
        self._require_transaction("outbox_add")
        self._outbox.add(partition, offset, topic, key, value, headers)

    def outbox_pending(
        self, partitions: Sequence[int] | None = None, limit: int = 10_000
    ) -> list[OutboxMessage]:
        return self._outbox.pending(partitions, limit)

    def outbox_done(self, through: Mapping[int, int]) -> None:
        """Forget what the broker acknowledged (inside or outside a transaction)."""
        if self._in_tx:
            self._outbox.done(through)
            return
        with self.transaction():
            self._outbox.done(through)
