"""The brokers the system tests run on: tansu (the embedded default) and Apache Kafka
itself (a KRaft node started from the jars ops/kafka/fetch put in the cache)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

#: the broker parameter of the ``broker`` fixture: every system test runs on both
BROKERS = ["tansu", pytest.param("kafka", marks=pytest.mark.kafka)]


@dataclass(frozen=True)
class Broker:
    """A running broker as the tests use it."""

    name: str  # tansu or kafka
    bootstrap_servers: str
    #: producers use idempotence on Apache Kafka; tansu's memory storage lacks it
    idempotence: bool

    def env(self) -> dict[str, str]:
        """What a ``crg`` process started by a test needs to use this broker."""
        return {
            "CRG_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "CRG_KAFKA_IDEMPOTENCE": "true" if self.idempotence else "false",
        }
