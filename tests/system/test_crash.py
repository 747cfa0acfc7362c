"""Kill -9 the gateway at random moments during a stream of 20,000 events, 10 times:
the final ledger, verified set and rejected set equal those of a run without crashes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from gateway.service.ledger.backends import open_ledger
from gateway.streaming.topics import Topics, ensure_topics
from ops.processes import trust_store
from tests.conftest import T0, RegistryKey
from tests.streams import mixed_stream
from tests.support.brokers import Broker
from tests.support.harness import read_to_end, reason_of

pytestmark = pytest.mark.broker

EVENTS = int(os.environ.get("CRG_CRASH_EVENTS", "20000"))
KILLS = int(os.environ.get("CRG_CRASH_KILLS", "10"))
#: batches small enough that every kill lands mid-stream, however few the events
BATCH = max(5, min(100, EVENTS // (10 * (KILLS + 1))))
PARTITIONS = 4


def start_gateway(data_dir: Path, broker: Broker, prefix: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **broker.env(),
        "CRG_TOPIC_PREFIX": prefix,
        "CRG_DATA_DIR": str(data_dir),
        "CRG_LOG_LEVEL": "warning",
        "CRG_LOG_FORMAT": "json",
        "CRG_GATEWAY_MAX_BATCH": str(BATCH),  # small batches: more commits to die between
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "gateway"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "gw.log", "ab"),
    )


def progress(data_dir: Path, topic: str) -> tuple[int, int]:
    """(messages the gateway committed as judged, verdicts not yet acknowledged), read-only
    from its ledger."""
    path = data_dir / "gateway" / "ledger.sqlite"
    if not path.exists():
        return 0, 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            (judged,) = db.execute(
                "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = ?",
                (topic,),
            ).fetchone()
            (pending,) = db.execute("SELECT count(*) FROM outbox").fetchone()
    except sqlite3.OperationalError:
        return 0, 0  # tables not created yet
    return int(judged), int(pending)


def run_to_end(
    data_dir: Path, broker: Broker, prefix: str, total: int, kills: int, rng: random.Random
) -> list[int]:
    """Run the gateway until it has judged ``total`` messages, SIGKILLing it ``kills`` times
    on the way, each time shortly after it has started to make progress. Returns how many
    messages were judged at each kill."""
    topic = Topics(prefix).raw
    progress_at_kills: list[int] = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        before = progress(data_dir, topic)[0]
        process = start_gateway(data_dir, broker, prefix)
        try:
            if len(progress_at_kills) < kills:
                while before == progress(data_dir, topic)[0] < total:
                    assert time.monotonic() < deadline, "the gateway made no progress"
                    assert process.poll() is None, (data_dir / "gw.log").read_text()[-2000:]
                    time.sleep(0.02)
                # inside a batch, a commit, a flush (sooner when there are fewer events)
                time.sleep(rng.uniform(0.0, 0.15) * min(1.0, total / 20_000))
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                progress_at_kills.append(progress(data_dir, topic)[0])
                continue
            while progress(data_dir, topic) != (total, 0):
                assert process.poll() is None, (data_dir / "gw.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "gateway did not finish in time"
                time.sleep(0.2)
            return progress_at_kills
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
    raise AssertionError("out of time")


async def publish(broker: Broker, prefix: str, messages: list) -> None:  # type: ignore[type-arg]
    topics = Topics(prefix)
    await ensure_topics(broker.bootstrap_servers, topics.all(), PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topics.raw, m.value, key=m.key, headers=list(m.headers))
            for m in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def two_registries() -> dict[str, RegistryKey]:
    """The keys of the two registries the crash streams come from (generated here)."""
    return {
        "verra": RegistryKey("verra", valid_from=T0),
        "gold-standard": RegistryKey("gold-standard", valid_from=T0),
    }


def prepare(tmp: Path, keys: dict[str, RegistryKey]) -> Path:
    tmp.mkdir()
    trust_store(tmp, [k.record for k in keys.values()])
    return tmp


async def outcome(broker: Broker, data_dir: Path, prefix: str, total: int) -> dict:  # type: ignore[type-arg]
    ledger = open_ledger(f"sqlite://{data_dir / 'gateway' / 'ledger.sqlite'}")
    topics = Topics(prefix)
    verified = await read_to_end(broker, topics.verified)
    rejected = await read_to_end(broker, topics.rejected)
    result = {
        "digest": ledger.digest(),
        "accepted": ledger.accepted_count(),
        "verified_ids": {r.headers["ce_id"] for r in verified},
        "verified_copies": Counter(r.value for r in verified),
        "rejected": Counter((r.headers.get("ce_id"), reason_of(r)) for r in rejected),
        "rejected_in_ledger": Counter(r.reason for r in ledger.rejected(limit=10**6)),
    }
    ledger.close()
    return result


async def test_sigkill_at_random_moments_changes_nothing(broker: Broker, tmp_path: Path) -> None:
    keys = two_registries()
    messages = mixed_stream(keys, EVENTS)
    calm, crashy = f"calm{uuid.uuid4().hex[:6]}", f"crash{uuid.uuid4().hex[:6]}"
    await publish(broker, calm, messages)
    await publish(broker, crashy, messages)
    calm_dir, crash_dir = prepare(tmp_path / "calm", keys), prepare(tmp_path / "crash", keys)
    rng = random.Random(2026)

    loop = asyncio.get_running_loop()
    assert (
        await loop.run_in_executor(None, run_to_end, calm_dir, broker, calm, EVENTS, 0, rng) == []
    )
    judged_at_kills = await loop.run_in_executor(
        None, run_to_end, crash_dir, broker, crashy, EVENTS, KILLS, rng
    )
    # every kill landed mid-stream, with work judged since the previous one
    assert len(judged_at_kills) == KILLS
    assert all(0 < judged < EVENTS for judged in judged_at_kills), judged_at_kills

    reference = await outcome(broker, calm_dir, calm, EVENTS)
    crashed = await outcome(broker, crash_dir, crashy, EVENTS)
    # the stream is a realistic mix: plenty accepted, plenty refused for ledger reasons
    # (a stream scaled down below 10,000 events is too short for many double uses)
    assert reference["accepted"] > EVENTS // 4
    if EVENTS >= 10_000:
        assert reference["rejected_in_ledger"]["units_not_active"] > EVENTS // 100
        assert reference["rejected_in_ledger"]["units_not_held"] > EVENTS // 100
    assert crashed["digest"] == reference["digest"]
    assert crashed["accepted"] == reference["accepted"]
    assert crashed["verified_ids"] == reference["verified_ids"]
    assert len(crashed["verified_ids"]) == reference["accepted"]
    # a crash between producing and clearing the outbox may repeat a verdict: identical bytes
    assert set(crashed["verified_copies"]) == set(reference["verified_copies"])
    assert set(crashed["rejected"]) == set(reference["rejected"])
    assert crashed["rejected_in_ledger"] == reference["rejected_in_ledger"]
    assert sum(reference["rejected_in_ledger"].values()) + reference["accepted"] == EVENTS
