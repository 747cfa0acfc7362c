"""Tables of a Party's national-registry store (one store per Party), for SQLite and
PostgreSQL: what it knows of the programs' units, its ITMO actions, the tracking records
of applied events, and the consumer's offsets and outbox."""

from __future__ import annotations

from gateway.storage.migrations import Migration
from gateway.storage.outbox import ddl as outbox_ddl

_TABLES = """
CREATE TABLE IF NOT EXISTS issuances (
    registry_id TEXT NOT NULL,
    series      TEXT NOT NULL,
    start_no    BIGINT NOT NULL,
    end_no      BIGINT NOT NULL,
    project_id  TEXT NOT NULL,
    host_party  TEXT NOT NULL,
    vintage     INTEGER NOT NULL,
    unit_type   TEXT NOT NULL,
    PRIMARY KEY (registry_id, series, start_no)
);
CREATE TABLE IF NOT EXISTS accounts (
    registry_id TEXT NOT NULL,
    account     TEXT NOT NULL,
    party       TEXT NOT NULL,
    PRIMARY KEY (registry_id, account)
);
CREATE TABLE IF NOT EXISTS article6_blocks (
    registry_id  TEXT NOT NULL,
    series       TEXT NOT NULL,
    start_no     BIGINT NOT NULL,
    end_no       BIGINT NOT NULL,
    project_id   TEXT NOT NULL,
    vintage      INTEGER NOT NULL,
    unit_type    TEXT NOT NULL,
    label        TEXT NOT NULL,
    host_party   TEXT NOT NULL,
    state        TEXT NOT NULL,
    holder_party TEXT NOT NULL,
    account      TEXT,
    PRIMARY KEY (registry_id, series, start_no),
    CHECK (start_no <= end_no)
);
CREATE INDEX IF NOT EXISTS article6_blocks_host ON article6_blocks (host_party);
CREATE INDEX IF NOT EXISTS article6_blocks_holder ON article6_blocks (holder_party);
CREATE TABLE IF NOT EXISTS itmo_actions (
    action_id   TEXT PRIMARY KEY,
    party       TEXT NOT NULL,
    action_type TEXT NOT NULL,
    subtype     TEXT,
    occurred_at TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    registry_id TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    cooperative_approach TEXT NOT NULL,
    authorization_id     TEXT NOT NULL,
    first_transferring_party TEXT NOT NULL,
    party_registry TEXT NOT NULL,
    serial_first BIGINT NOT NULL,
    serial_last  BIGINT NOT NULL,
    vintage      INTEGER NOT NULL,
    series       TEXT NOT NULL,
    unit_first   BIGINT NOT NULL,
    unit_last    BIGINT NOT NULL,
    quantity     BIGINT NOT NULL,
    purposes     TEXT NOT NULL,
    first_transfer_definition TEXT,
    transferring_party TEXT,
    acquiring_party    TEXT,
    using_party  TEXT,
    using_entity TEXT,
    oimp_purpose TEXT,
    ndc_year     INTEGER,
    ca_party     TEXT,
    ca_year      INTEGER,
    ca_sign      TEXT,
    details      TEXT
);
CREATE INDEX IF NOT EXISTS itmo_actions_time ON itmo_actions (party, occurred_at);
CREATE INDEX IF NOT EXISTS itmo_actions_serial
    ON itmo_actions (cooperative_approach, party_registry, serial_first);
CREATE TABLE IF NOT EXISTS applied_events (
    registry_id TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    actions     INTEGER NOT NULL,
    source      TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL,  -- Unix time, seconds; not in the digest
    PRIMARY KEY (registry_id, event_id)
);
"""

SQLITE = _TABLES + outbox_ddl("BLOB")
POSTGRES = _TABLES + outbox_ddl("BYTEA")


def _letters(binary: str) -> str:
    return f"""
ALTER TABLE article6_blocks ADD COLUMN letter TEXT;
ALTER TABLE article6_blocks ADD COLUMN claimed_on TEXT;
CREATE INDEX IF NOT EXISTS article6_blocks_host_state ON article6_blocks (host_party, state);
CREATE TABLE IF NOT EXISTS party_letters (
    party       TEXT NOT NULL,
    letter      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    value       {binary} NOT NULL,  -- the letter as the Party signed it (Avro)
    source      TEXT NOT NULL,      -- topic/partition/offset it was read from
    PRIMARY KEY (party, letter)
);
"""


#: a Party's ITMO ledger, version by version (:mod:`gateway.storage.migrations`)
MIGRATIONS = (
    Migration(1, "the ITMO ledger as of the first release", SQLITE, POSTGRES),
    Migration(
        2,
        "host Parties' letters of authorization; claimed blocks and the letter of each",
        _letters("BLOB"),
        _letters("BYTEA"),
    ),
)
