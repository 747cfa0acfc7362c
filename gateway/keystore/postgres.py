"""Public keys in a PostgreSQL table, for gateways that share one trust store."""

from __future__ import annotations

import psycopg

from gateway.contract.keys import KeyRecord, KeyRing

DDL = """
CREATE TABLE IF NOT EXISTS crg_registry_keys (
    key_id            text PRIMARY KEY,
    registry_id       text NOT NULL,
    public_key        bytea NOT NULL CHECK (length(public_key) = 32),
    valid_from        timestamptz NOT NULL,
    valid_until       timestamptz,
    revoked_at        timestamptz,
    revocation_reason text
)
"""

UPSERT = """
INSERT INTO crg_registry_keys
    (key_id, registry_id, public_key, valid_from, valid_until, revoked_at, revocation_reason)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (key_id) DO UPDATE SET
    valid_until = EXCLUDED.valid_until,
    revoked_at = EXCLUDED.revoked_at,
    revocation_reason = EXCLUDED.revocation_reason
WHERE crg_registry_keys.public_key = EXCLUDED.public_key
  AND crg_registry_keys.registry_id = EXCLUDED.registry_id
"""


class PostgresKeyStorage:
    def __init__(self, url: str) -> None:
        self.url = url

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(self.url, connect_timeout=5)
        with conn.transaction():
            conn.execute(DDL)
        return conn

    def load(self) -> KeyRing:
        with self._connect() as conn:
            return self._ring(conn)

    @staticmethod
    def _ring(conn: psycopg.Connection[tuple[object, ...]]) -> KeyRing:
        rows = conn.execute(
            "SELECT registry_id, key_id, public_key, valid_from, valid_until, revoked_at,"
            " revocation_reason FROM crg_registry_keys"
        ).fetchall()
        return KeyRing(
            KeyRecord(
                registry_id=str(r[0]),
                key_id=str(r[1]),
                public_key=bytes(r[2]),  # type: ignore[arg-type]
                valid_from=r[3],  # type: ignore[arg-type]
                valid_until=r[4],  # type: ignore[arg-type]
                revoked_at=r[5],  # type: ignore[arg-type]
                revocation_reason=r[6],  # type: ignore[arg-type]
            )
            for r in rows
        )

    def save(self, records: list[KeyRecord]) -> None:
        """Merge ``records`` into the stored ones by :meth:`KeyRing.put`'s rules (the store
        only tightens), all or none; writers take turns on the table."""
        with self._connect() as conn, conn.transaction():
            conn.execute("LOCK TABLE crg_registry_keys IN SHARE ROW EXCLUSIVE MODE")
            ring = self._ring(conn)
            for r in [ring.put(record) for record in records]:
                cur = conn.execute(
                    UPSERT,
                    (
                        r.key_id,
                        r.registry_id,
                        r.public_key,
                        r.valid_from,
                        r.valid_until,
                        r.revoked_at,
                        r.revocation_reason,
                    ),
                )
                if cur.rowcount != 1:
                    raise ValueError(
                        f"key id {r.key_id} is already registered with another key or registry"
                    )
