"""Shared fixtures: the real local broker, a real PostgreSQL, generated keys."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.broker.local import LocalBroker
from gateway.contract.keys import KeyRecord, KeyRing, public_key_bytes

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("CRG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as running:
        yield running


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]
    return None


def pg_schema_url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL schema, dropped when the test ends; skips only outside CI when
    no server answers."""
    problem = _pg_reachable()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI=true: {problem}")
        pytest.skip(f"no PostgreSQL reachable at {PG_URL}: {problem}")
    schema = f"crg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    request.addfinalizer(drop)
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL schema per test."""
    return pg_schema_url(request)


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class RegistryKey:
    """A registry's generated key pair and its public record."""

    def __init__(self, registry_id: str, valid_from: dt.datetime = T0, **extra: object) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.record = KeyRecord(
            registry_id,
            f"{registry_id}-{uuid.uuid4().hex[:8]}",
            public_key_bytes(self.private),
            valid_from=valid_from,
            **extra,  # type: ignore[arg-type]
        )

    @property
    def key_id(self) -> str:
        return self.record.key_id


@pytest.fixture
def verra_key() -> RegistryKey:
    return RegistryKey("verra")


@pytest.fixture
def key_ring(verra_key: RegistryKey) -> KeyRing:
    return KeyRing([verra_key.record])


@pytest.fixture(scope="session", autouse=True)
def _quiet_logs() -> None:
    """Every verdict is logged at info; tests keep warnings and errors only."""
    from gateway.logging import configure_logging

    configure_logging("console", "warning")
