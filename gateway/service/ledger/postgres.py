"""The ledger on PostgreSQL: several gateway instances may share it."""

from __future__ import annotations

import functools

from gateway.service.ledger.blocks import BLOCK_COLUMNS
from gateway.service.ledger.store import LedgerStore
from gateway.storage.database import of, wanted_ranges


@functools.lru_cache(maxsize=64)
def _blocks_of_ranges(n: int) -> str:
    """The exclusion constraint's GiST index answers range overlap itself; the lateral
    join (kept apart by ``OFFSET 0``) stops the planner from hashing the ranges against
    every block of a registry when its statistics still describe an empty table."""
    return (
        f"{wanted_ranges(n)} SELECT {of('b', BLOCK_COLUMNS)} FROM wanted w"
        " CROSS JOIN LATERAL (SELECT * FROM blocks x"
        " WHERE x.registry_id = w.registry_id AND x.series = w.series"
        " AND int8range(x.start_no, x.end_no, '[]') && int8range(w.lo, w.hi, '[]')"
        " OFFSET 0) b"
    )


class PostgresLedger(LedgerStore):
    """Ledger positions come from the identity column's sequence, reserved for a batch in
    one call (a position an instance reserved and did not use stays a gap); the
    registries' sequence rows a batch reads stay locked until it commits."""

    lock_rows = " FOR UPDATE"
    overriding = " OVERRIDING SYSTEM VALUE"

    def _blocks_of_ranges(self, n: int) -> str:
        return _blocks_of_ranges(n)

    def _reserve_positions(self, n: int) -> list[int]:
        rows = self.db.execute(
            "SELECT nextval(pg_get_serial_sequence('accepted_events', 'position'))"
            " FROM generate_series(1, ?)",
            (n,),
        ).fetchall()
        return sorted(int(r[0]) for r in rows)
