"""The gateway ledger."""
