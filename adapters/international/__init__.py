"""The international-registry adapter (ITMO actions → idempotent HTTP calls) and an
emulator of the registry's interface for tests and demos."""
