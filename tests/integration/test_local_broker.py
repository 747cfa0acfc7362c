"""The embedded broker: loopback only, starts, serves Kafka clients, stops cleanly."""

from __future__ import annotations

import socket

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.broker.local import LocalBroker
from gateway.broker.topics import ensure_topics


def test_refuses_non_loopback_addresses() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalBroker(host="0.0.0.0")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.broker
async def test_start_produce_consume_stop() -> None:
    broker = LocalBroker().start()
    try:
        assert _listening(broker.port)
        await ensure_topics(broker.bootstrap_servers, ["t"], 2)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        await producer.send_and_wait("t", b"v", key=b"k", headers=[("h", b"1")])
        await producer.stop()
        consumer = AIOKafkaConsumer(
            "t",
            bootstrap_servers=broker.bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        got = await consumer.getmany(timeout_ms=5000)
        await consumer.stop()
        (msg,) = [m for msgs in got.values() for m in msgs]
        assert (msg.key, msg.value, msg.headers) == (b"k", b"v", (("h", b"1"),))
    finally:
        broker.stop()
    assert not _listening(broker.port)
    broker.stop()  # stopping twice is harmless
