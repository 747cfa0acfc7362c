"""The ledger store for a URL."""

from __future__ import annotations

from gateway.service.ledger.postgres import PostgresLedger
from gateway.service.ledger.schema import MIGRATIONS
from gateway.service.ledger.sqlite import SqliteLedger
from gateway.service.ledger.store import LedgerStore
from gateway.storage import open_database


def open_ledger(url: str) -> LedgerStore:
    """``sqlite:///path/ledger.sqlite`` (or a bare path), or ``postgresql://…``."""
    db = open_database(url, "ledger", MIGRATIONS)
    return PostgresLedger(db) if db.postgres else SqliteLedger(db)
