"""Tables of the gateway's ledger database, for SQLite and PostgreSQL.

Everything the gateway must commit together lives here: blocks, accepted event ids and
sequences, rejected events, consumed offsets and the outbox of verdicts to produce.
"""

from __future__ import annotations

from gateway.storage.migrations import Migration
from gateway.storage.outbox import ddl as outbox_ddl

_COMMON = """
CREATE TABLE IF NOT EXISTS blocks (
    registry_id TEXT NOT NULL,
    series      TEXT NOT NULL,
    start_no    BIGINT NOT NULL,
    end_no      BIGINT NOT NULL,
    project_id  TEXT NOT NULL,
    host_party  TEXT NOT NULL,
    vintage     INTEGER NOT NULL,
    unit_type   TEXT NOT NULL,
    account     TEXT NOT NULL,
    status      TEXT NOT NULL,
    labels      TEXT NOT NULL,
    issued_by   TEXT NOT NULL,
    PRIMARY KEY (registry_id, series, start_no),
    CHECK (start_no <= end_no)
);
CREATE TABLE IF NOT EXISTS project_issuances (
    identity      TEXT NOT NULL,
    registry_id   TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    vintage_start TEXT NOT NULL,
    vintage_end   TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    PRIMARY KEY (registry_id, event_id)
);
CREATE INDEX IF NOT EXISTS project_issuances_identity ON project_issuances (identity);
-- per registry: every number up to high has arrived or was reported missing
-- (gateway/service/ledger/sequences.py)
CREATE TABLE IF NOT EXISTS sequence_state (
    registry_id TEXT PRIMARY KEY,
    high        BIGINT NOT NULL
);
-- per registry and raw partition: the highest number read there, and when it was raised
CREATE TABLE IF NOT EXISTS sequence_marks (
    registry_id  TEXT NOT NULL,
    partition_no INTEGER NOT NULL,
    high         BIGINT NOT NULL,
    raised_at    DOUBLE PRECISION NOT NULL,  -- Unix seconds, the gateway's clock
    PRIMARY KEY (registry_id, partition_no)
);
-- numbers of authentic events the ledger refused, above the checked mark: they arrived
CREATE TABLE IF NOT EXISTS refused_sequences (
    registry_id TEXT NOT NULL,
    sequence    BIGINT NOT NULL,
    PRIMARY KEY (registry_id, sequence)
);
"""

SQLITE = (
    _COMMON
    + """
CREATE TABLE IF NOT EXISTS accepted_events (
    position     INTEGER PRIMARY KEY AUTOINCREMENT,
    registry_id  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    value_sha256 BLOB NOT NULL,
    sequence     BIGINT NOT NULL,
    source       TEXT NOT NULL,
    UNIQUE (registry_id, event_id),
    UNIQUE (registry_id, sequence)
);
CREATE TABLE IF NOT EXISTS rejected_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    registry_id     TEXT,
    event_id        TEXT,
    reason          TEXT NOT NULL,
    message         TEXT NOT NULL,
    value           BLOB NOT NULL,
    headers         BLOB NOT NULL,
    source          TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    reprocessed_at  TEXT
);
"""
    + outbox_ddl("BLOB")
)

POSTGRES = (
    _COMMON
    + """
CREATE EXTENSION IF NOT EXISTS btree_gist;
DO $$ BEGIN
    ALTER TABLE blocks ADD CONSTRAINT blocks_never_overlap EXCLUDE USING gist (
        registry_id WITH =, series WITH =, int8range(start_no, end_no, '[]') WITH &&);
EXCEPTION WHEN duplicate_object OR duplicate_table THEN NULL;
END $$;
CREATE TABLE IF NOT EXISTS accepted_events (
    position     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry_id  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    value_sha256 BYTEA NOT NULL,
    sequence     BIGINT NOT NULL,
    source       TEXT NOT NULL,
    UNIQUE (registry_id, event_id),
    UNIQUE (registry_id, sequence)
);
CREATE TABLE IF NOT EXISTS rejected_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry_id     TEXT,
    event_id        TEXT,
    reason          TEXT NOT NULL,
    message         TEXT NOT NULL,
    value           BYTEA NOT NULL,
    headers         BYTEA NOT NULL,
    source          TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    reprocessed_at  TEXT
);
"""
    + outbox_ddl("BYTEA")
)


#: the ledger's schema, version by version (:mod:`gateway.storage.migrations`)
MIGRATIONS = (Migration(1, "the ledger as of the first release", SQLITE, POSTGRES),)
