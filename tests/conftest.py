"""Shared fixtures: the real brokers (tansu and Apache Kafka), a real PostgreSQL,
generated keys."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.national.store import NationalStore, open_national_store
from gateway.contract.keys import KeyRecord, KeyRing, public_key_bytes
from gateway.streaming.apache_kafka import KafkaCluster
from gateway.streaming.local_broker import LocalBroker
from tests.support.brokers import BROKERS, Broker
from tests.support.national import Opener
from tests.support.postgres import postgres_url, stop_postgres


@pytest.fixture(scope="session")
def tansu() -> Iterator[Broker]:
    with LocalBroker() as running:
        yield Broker("tansu", running.bootstrap_servers, idempotence=False)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One Apache Kafka KRaft node; its data and log stay under pytest's temporary
    folder (the last runs' are kept)."""
    with KafkaCluster(1, tmp_path_factory.mktemp("kafka")) as cluster:
        yield Broker("kafka", cluster.bootstrap_servers, idempotence=True)


@pytest.fixture(scope="session", params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Broker:
    """The broker a system test runs on: tansu, then Apache Kafka (marker ``kafka``)."""
    running: Broker = request.getfixturevalue(request.param)
    return running


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_postgres()


def pg_schema_url(request: pytest.FixtureRequest) -> str:
    """A fresh PostgreSQL schema, dropped when the test ends. The server is the one
    `CRG_TEST_POSTGRES_URL` names, or one the session starts itself; never skipped."""
    server = postgres_url()
    schema = f"crg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    request.addfinalizer(drop)
    sep = "&" if "?" in server else "?"
    return f"{server}{sep}options=-csearch_path%3D{schema}"


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


@pytest.fixture(params=["sqlite", "postgresql"])
def open_party(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores of one backend; each Party (and each name) its own database."""
    opened: list[NationalStore] = []

    def open_store(party: str, name: str) -> NationalStore:
        if request.param == "sqlite":
            url = f"sqlite://{tmp_path / f'{name}.sqlite'}"
        else:
            url = pg_schema_url(request)
        opened.append(open_national_store(url, party))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def ghana(open_party: Opener) -> NationalStore:
    return open_party("GHA", "gha")
