"""The embedded broker: loopback only, starts, serves Kafka clients, stops cleanly."""

from __future__ import annotations

import socket

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from gateway.streaming.local_broker import LocalBroker
from gateway.streaming.topics import ensure_topics


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


@pytest.mark.broker
async def test_produce_all_partitions_like_send_and_keeps_order(broker: LocalBroker) -> None:
    """The batched publisher puts each key on the partition ``send`` would, in order, and
    spreads keyless messages; every message arrives once, headers intact."""
    from dataclasses import dataclass

    from gateway.streaming.produce import produce_all

    @dataclass
    class Msg:
        key: bytes | None
        value: bytes
        headers: tuple[tuple[str, bytes], ...]

    await ensure_topics(broker.bootstrap_servers, ["bulk", "probe"], 3)
    keys = [f"verra/P{i}".encode() for i in range(17)]
    messages = [
        Msg(keys[i % 17] if i % 10 else None, f"{i}".encode() * 300, (("n", str(i).encode()),))
        for i in range(6000)  # several 512 KiB batches per partition
    ]
    await produce_all(broker.bootstrap_servers, "bulk", messages)

    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        where = {k: (await producer.send_and_wait("probe", b"", key=k)).partition for k in keys}
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "bulk", bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: dict[int, list[tuple[int, bytes | None]]] = {}
    try:
        while sum(map(len, got.values())) < len(messages):
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for r in records:
                    n = int(dict(r.headers)["n"])
                    assert r.value == messages[n].value
                    got.setdefault(tp.partition, []).append((n, r.key))
    finally:
        await consumer.stop()
    assert sorted(n for part in got.values() for n, _ in part) == list(range(6000))
    for partition, part in got.items():
        assert [n for n, _ in part] == sorted(n for n, _ in part)  # in order
        assert all(where[k] == partition for _, k in part if k is not None)
    keyless = {p for p, part in got.items() for _, k in part if k is None}
    assert keyless == {0, 1, 2}
