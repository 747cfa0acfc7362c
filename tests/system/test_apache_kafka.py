"""The integration scenarios against Apache Kafka (testcontainers), idempotent producers
on: signed events through the gateway into Ghana's and Switzerland's ITMO ledgers, and a
replay into an empty store that rebuilds the same digest. Runs where Docker exists;
skips here with the reason (no Docker daemon on these machines)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.national.store import open_national_store
from gateway.contract.keys import KeyRing
from gateway.service.ledger.backends import open_ledger
from tests.conftest import RegistryKey
from tests.support.harness import Harness, read_to_end
from tests.system.test_national_adapter import run_adapter, signed_stream


def _docker_problem() -> str | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # no daemon, no socket, no permission: all mean no Docker
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


@pytest.fixture(scope="module")
def kafka() -> Iterator[Any]:
    problem = _docker_problem()
    if problem is not None:
        pytest.skip(f"Apache Kafka via testcontainers needs Docker: {problem}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
        yield container


class KafkaBroker:
    """What the harness needs of a broker: where to connect."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap_servers = bootstrap


async def test_the_stories_through_apache_kafka(kafka: Any, tmp_path: Path) -> None:
    broker = KafkaBroker(kafka.get_bootstrap_server())
    key = RegistryKey("verra")
    ledger = open_ledger(f"sqlite://{tmp_path / 'ledger.sqlite'}")
    harness = await Harness(
        broker,
        ledger,
        KeyRing([key.record]),  # type: ignore[arg-type]
        idempotence=True,
    ).start()
    try:
        await harness.send(*signed_stream(key))
        await harness.drain()
        verified = len(await read_to_end(broker, harness.topics.verified))  # type: ignore[arg-type]
        assert verified == 12
        ghana = open_national_store(f"sqlite://{tmp_path / 'gha.sqlite'}", "GHA")
        await run_adapter(harness, ghana, verified)
        assert len(ghana.actions()) == 8
        scratch = open_national_store(f"sqlite://{tmp_path / 'scratch.sqlite'}", "GHA")
        await run_adapter(harness, scratch, verified)
        assert scratch.digest() == ghana.digest()
    finally:
        await harness.stop()
        ledger.close()
