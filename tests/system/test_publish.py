"""Publishing signed events to the real local broker, consuming and verifying them."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner
from gateway.publishing.journal import PublishJournal
from gateway.publishing.publisher import Publisher, make_producer
from gateway.publishing.reader import read_and_verify
from gateway.publishing.sources.jsonl import read_jsonl
from gateway.publishing.sources.verra import read_verra
from gateway.streaming.local_broker import LocalBroker
from gateway.streaming.topics import ensure_topics, list_topics
from tests.conftest import RegistryKey
from tests.factories import envelope, issued, retired
from tests.support.brokers import Broker

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "registry-exports" / "verra"

pytestmark = pytest.mark.broker


async def fresh_topic(broker: Broker, partitions: int = 6) -> str:
    name = f"test.{uuid.uuid4().hex[:10]}"
    assert await ensure_topics(broker.bootstrap_servers, [name], partitions) == [name]
    return name


async def publish(broker: Broker, key: RegistryKey, topic: str, items, journal, **kw):  # type: ignore[no-untyped-def]
    producer = make_producer(broker.bootstrap_servers, idempotence=False)
    await producer.start()
    try:
        signer = EventSigner(default_codec(), key.key_id, key.private)
        return await Publisher(signer, "verra", journal, producer, topic, **kw).publish(items)
    finally:
        await producer.stop()


async def raw_values(broker: Broker, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=200)
            values += [m.value for msgs in batch.values() for m in msgs]
            if len(values) >= expected:
                break
    finally:
        await consumer.stop()
    return values


async def test_topics_are_created_once(broker: Broker) -> None:
    name = await fresh_topic(broker)
    assert await ensure_topics(broker.bootstrap_servers, [name], 6) == []
    assert name in await list_topics(broker.bootstrap_servers)


async def test_real_verra_export_published_consumed_and_verified(
    broker: Broker, tmp_path: Path
) -> None:
    key = RegistryKey("verra", valid_from=dt.datetime(2016, 1, 1, tzinfo=dt.UTC))
    topic = await fresh_topic(broker)
    journal = PublishJournal(tmp_path / "journal.sqlite")
    with (SAMPLE / "transactions.csv").open(encoding="utf-8-sig", newline="") as stream:
        items = list(read_verra(stream))
    report = await publish(broker, key, topic, items, journal)
    assert dict(report.sent) == {"UnitsIssued": 44, "UnitsRetired": 100}
    assert report.invalid == [] and report.failed == []

    tally = await read_and_verify(
        broker.bootstrap_servers, topic, KeyRing([key.record]), default_codec(), expected=144
    )
    assert dict(tally.verified) == {"UnitsIssued": 44, "UnitsRetired": 100}
    assert not tally.rejected
    # every event on the same units (same registry and project) sits in one partition
    assert all(len(parts) == 1 for parts in tally.keys_by_partition.values())
    assert len(tally.partitions) > 1
    # sequence numbers 1..144 in the order of the export's events
    assert sorted(e.sequence for e in tally.events) == list(range(1, 145))
    by_id = {e.event_id: e.sequence for e in tally.events}
    assert (
        by_id["verra:issuance:19309:936487628-936494871"]
        < by_id[
            "verra:retirement:19309-936487628-936491271-VCS-VCU-1491-VER-RW-3-4150-01102024-31122024-1"
        ]
    )

    # a second run publishes nothing new; --resend sends the very same bytes again
    again = await publish(broker, key, topic, items, journal)
    assert (again.total_sent, again.already_published) == (0, 144)
    first = sorted(await raw_values(broker, topic, 144))
    resent = await publish(broker, key, topic, items, journal, resend=True)
    assert resent.total_sent == 144
    both = sorted(await raw_values(broker, topic, 288))
    assert both == sorted(first + first)
    journal.close()


async def test_jsonl_counts_add_up_and_bad_lines_are_reported(
    broker: Broker, tmp_path: Path
) -> None:
    key = RegistryKey("verra")
    topic = await fresh_topic(broker, partitions=2)
    lines = [
        json.dumps(envelope(issued(), event_id="e1")),  # 1 sent
        "{broken",  # 2 not JSON
        json.dumps(envelope(issued(quantity=5), event_id="e2")),  # 3 model invalid
        json.dumps(envelope(retired(), event_id="e3", sequence=None)),  # 4 sequence null
        json.dumps(
            {k: v for k, v in envelope(retired(), event_id="e4").items() if k != "sequence"}
        ),  # 5 sent, seq assigned
        json.dumps(envelope(retired(), event_id="e5", registry_id="gold-standard")),  # 6 other reg
    ]
    items = list(read_jsonl(io.StringIO("\n".join(lines) + "\n")))
    journal = PublishJournal(tmp_path / "j.sqlite")
    report = await publish(broker, key, topic, items, journal)
    assert report.total_sent == 2
    assert [p.location for p in report.invalid] == ["line 2", "line 3", "line 4", "line 6"]
    assert "does not equal the serial range size" in report.invalid[1].message
    assert "not the signing key's registry" in report.invalid[3].message
    assert report.total_sent + len(report.invalid) == len(lines)
    tally = await read_and_verify(
        broker.bootstrap_servers, topic, KeyRing([key.record]), default_codec(), expected=2
    )
    assert sorted((e.event_id, e.sequence) for e in tally.events) == [("e1", 1), ("e4", 2)]
    journal.close()


async def test_stop_on_error_stops_at_the_first_bad_line(broker: Broker, tmp_path: Path) -> None:
    key = RegistryKey("verra")
    topic = await fresh_topic(broker, partitions=1)
    text = "\n".join(
        [
            json.dumps(envelope(issued(), event_id="e1")),
            "{broken",
            json.dumps(envelope(retired(), event_id="e2", sequence=2)),
        ]
    )
    journal = PublishJournal(tmp_path / "j.sqlite")
    report = await publish(
        broker, key, topic, read_jsonl(io.StringIO(text)), journal, stop_on_error=True
    )
    assert report.stopped
    assert (report.total_sent, [p.location for p in report.invalid]) == (1, ["line 2"])
    journal.close()


async def test_unreachable_broker_reports_failures_and_rerun_resends_same_sequence(
    broker: Broker, tmp_path: Path
) -> None:
    """A send that fails is reported; its journal entry keeps the sequence for the re-run."""
    key = RegistryKey("verra")
    journal = PublishJournal(tmp_path / "j.sqlite")
    down = LocalBroker().start()
    topic = f"test.{uuid.uuid4().hex[:10]}"
    await ensure_topics(down.bootstrap_servers, [topic], 1)
    producer = make_producer(down.bootstrap_servers, idempotence=False, request_timeout_ms=2000)
    await producer.start()
    down.stop()
    signer = EventSigner(default_codec(), key.key_id, key.private)
    items = list(
        read_jsonl(
            io.StringIO(
                json.dumps(
                    {k: v for k, v in envelope(issued(), event_id="e1").items() if k != "sequence"}
                )
            )
        )
    )
    try:
        publisher = Publisher(signer, "verra", journal, producer, topic)
        report = await publisher.publish(items)
    finally:
        await producer.stop()
    assert report.total_sent == 0 and [p.location for p in report.failed] == ["line 1"]
    assert journal.lookup("verra", "e1") == (1, False)

    live_topic = await fresh_topic(broker, partitions=1)
    report = await publish(broker, key, live_topic, items, journal)
    assert report.total_sent == 1 and journal.lookup("verra", "e1") == (1, True)
    journal.close()
