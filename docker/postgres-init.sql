-- One schema per store: keys, the gateway ledger, each Party's national store, the
-- international adapter. The stores create their own tables.
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE SCHEMA IF NOT EXISTS keys;
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE SCHEMA IF NOT EXISTS national_gha;
CREATE SCHEMA IF NOT EXISTS national_che;
CREATE SCHEMA IF NOT EXISTS international;
