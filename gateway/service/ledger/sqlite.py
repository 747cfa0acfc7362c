"""The ledger on SQLite (the embedded default)."""

from __future__ import annotations

from gateway.service.ledger.blocks import BLOCK_COLUMNS
from gateway.service.ledger.store import LedgerStore
from gateway.storage.database import ranges_sql


class SqliteLedger(LedgerStore):
    """Blocks of ranges found on the primary key; ledger positions follow the highest
    stored one (a transaction holds the file's write lock: nobody else inserts)."""

    def _blocks_of_ranges(self, n: int) -> str:
        return ranges_sql("blocks", BLOCK_COLUMNS, n)

    def _reserve_positions(self, n: int) -> list[int]:
        row = self.db.execute("SELECT coalesce(max(position), 0) FROM accepted_events").fetchone()
        return list(range(int(row[0]) + 1, int(row[0]) + 1 + n))
