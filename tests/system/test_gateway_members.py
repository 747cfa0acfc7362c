"""``crg gateway --processes 2``: two members of one consumer group over one SQLite
ledger judge a stream exactly as one gateway does, a member killed mid-stream is
restarted and changes nothing, the parent's ``/metrics`` sums the members, and no member
outlives its parent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from gateway.service.members import Members, MembersFailed
from gateway.streaming.local_broker import free_port
from gateway.streaming.topics import Topics
from ops.processes import descendants
from tests.streams import mixed_stream
from tests.support.brokers import Broker
from tests.system.test_crash import (
    outcome,
    prepare,
    progress,
    publish,
    run_to_end,
    two_registries,
)

pytestmark = pytest.mark.broker

EVENTS = 6000


def start_members(
    data_dir: Path, broker: Broker, prefix: str, http_port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **broker.env(),
        "CRG_TOPIC_PREFIX": prefix,
        "CRG_DATA_DIR": str(data_dir),
        "CRG_LOG_LEVEL": "info",
        "CRG_LOG_FORMAT": "json",
        "CRG_GATEWAY_MAX_BATCH": "200",
    }
    command = ["gateway", "--processes", "2", "--http", "--http-port", str(http_port)]
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", *command],
        env=env,
        stdout=open(data_dir / "gw.log", "ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, what: str, process: subprocess.Popen[bytes], log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 180
    while not condition():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what}: not in time\n{log.read_text()[-3000:]}"
        time.sleep(0.05)


def log_events(log: Path, name: str) -> list[dict]:  # type: ignore[type-arg]
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == name:
                events.append(record)
    return events


def judged_total(http_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.decode().splitlines()
        if line.startswith("crg_gateway_events_total{")
    )


def gone(pids: list[int]) -> bool:
    return not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    """Running, or stopped, but neither ended nor a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def two_members_undisturbed(data_dir: Path, broker: Broker, prefix: str) -> None:
    """Both members take partitions; the parent's ``/metrics`` counts every event once."""
    port, log = free_port(), data_dir / "gw.log"
    parent = start_members(data_dir, broker, prefix, port)
    try:
        topic = Topics(prefix).raw
        wait_for(lambda: progress(data_dir, topic) == (EVENTS, 0), "judged", parent, log)

        def sharing() -> set[int]:
            return {a["member"] for a in log_events(log, "crg-gateway.assigned") if a["partitions"]}

        # on Apache Kafka one member may judge a short stream alone before the other
        # joins; the group then gives the newcomer its share all the same
        wait_for(lambda: sharing() == {0, 1}, "both members assigned", parent, log)
        assigned = log_events(log, "crg-gateway.assigned")
        shares = [set(a["partitions"]) for a in assigned if a["partitions"]]
        assert set().union(*shares) == {0, 1, 2, 3}
        assert judged_total(port) == EVENTS  # both members' counts, summed by the parent
    finally:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(60) == 0


def a_member_killed_then_the_parent(data_dir: Path, broker: Broker, prefix: str) -> None:
    """A member SIGKILLed mid-stream is restarted and the stream judged to the end; the
    parent SIGKILLed, its members stop."""
    log = data_dir / "gw.log"
    parent = start_members(data_dir, broker, prefix, free_port())
    try:
        topic = Topics(prefix).raw
        wait_for(lambda: len(descendants(parent.pid)) == 2, "members", parent, log)
        wait_for(lambda: progress(data_dir, topic)[0] > 0, "progress", parent, log)
        victim = descendants(parent.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: progress(data_dir, topic) == (EVENTS, 0), "judged", parent, log)
        exited = log_events(log, "gateway.member_exited")
        assert [(e["pid"], e["exit_code"]) for e in exited] == [(victim, -signal.SIGKILL)]
        members = descendants(parent.pid)
        assert len(members) == 2 and victim not in members
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 30
        while not gone(members):  # each member hears of its parent's death and stops
            assert time.monotonic() < deadline, f"members {members} outlived their parent"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()


async def test_two_members_judge_as_one_gateway_and_a_killed_member_is_replaced(
    broker: Broker, tmp_path: Path
) -> None:
    keys = two_registries()
    messages = mixed_stream(keys, EVENTS)
    one, two, killed = (f"{name}{uuid.uuid4().hex[:6]}" for name in ("one", "two", "kill"))
    for prefix in (one, two, killed):
        await publish(broker, prefix, messages)
    loop = asyncio.get_running_loop()
    one_dir = prepare(tmp_path / "one", keys)
    await loop.run_in_executor(None, run_to_end, one_dir, broker, one, EVENTS, 0, None)
    reference = await outcome(broker, one_dir, one, EVENTS)
    assert reference["accepted"] > EVENTS // 4

    two_dir, kill_dir = prepare(tmp_path / "two", keys), prepare(tmp_path / "kill", keys)
    await loop.run_in_executor(None, two_members_undisturbed, two_dir, broker, two)
    assert await outcome(broker, two_dir, two, EVENTS) == reference
    await loop.run_in_executor(None, a_member_killed_then_the_parent, kill_dir, broker, killed)
    crashed = await outcome(broker, kill_dir, killed, EVENTS)
    assert crashed["digest"] == reference["digest"]
    assert crashed["verified_ids"] == reference["verified_ids"]
    # a member killed between producing and clearing its outbox may repeat a verdict
    assert set(crashed["verified_copies"]) == set(reference["verified_copies"])
    assert set(crashed["rejected"]) == set(reference["rejected"])
    assert crashed["rejected_in_ledger"] == reference["rejected_in_ledger"]


async def test_a_member_that_keeps_failing_stops_the_gateway() -> None:
    members = Members(2, [sys.executable, "-c", "import sys; sys.exit(3)"], {}, 0.01)
    started = time.monotonic()
    with pytest.raises(MembersFailed, match="exit code 3"):
        await members.run(asyncio.Event())
    assert time.monotonic() - started < 20
    assert all(p.returncode is not None for p in members.running.values())


async def test_stopping_ends_every_member() -> None:
    command = [sys.executable, "-c", "import time; time.sleep(120)"]
    members = Members(3, command, dict(os.environ))
    stop = asyncio.Event()
    running = asyncio.create_task(members.run(stop))
    async with asyncio.timeout(10):
        await members.started.wait()
    pids = [p.pid for p in members.running.values()]
    assert not gone(pids)
    stop.set()
    async with asyncio.timeout(20):
        await running
    assert gone(pids)
    assert all(p.returncode == -signal.SIGTERM for p in members.running.values())
