"""``crg rejected``: list, show and reprocess after a key was registered late."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner
from gateway.contract.models import RegistryEvent
from gateway.service.ledger.backends import open_ledger
from tests.conftest import RegistryKey
from tests.factories import envelope, issued
from tests.support.brokers import Broker
from tests.support.harness import Harness

pytestmark = pytest.mark.broker
REPO = Path(__file__).resolve().parents[2]


def crg(data_dir: Path, harness: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CRG_DATA_DIR": str(data_dir),
        "CRG_TOPIC_PREFIX": harness.topics.prefix,
        "CRG_BOOTSTRAP_SERVERS": harness.broker.bootstrap_servers,
    }
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )


async def test_list_show_and_reprocess_after_late_key_registration(
    broker: Broker, tmp_path: Path
) -> None:
    key = RegistryKey("verra")
    ledger = open_ledger(f"sqlite://{tmp_path / 'gateway' / 'ledger.sqlite'}")
    harness = await Harness(broker, ledger, KeyRing()).start()  # the key is not registered
    message = EventSigner(default_codec(), key.key_id, key.private).sign_event(
        RegistryEvent.model_validate(envelope(issued()))
    )
    await harness.send(message)
    await harness.drain()

    listed = crg(tmp_path, harness, "rejected", "list", "--reason", "key_unknown", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["event_id"], row["registry_id"], row["reason"]) == (None, None, "key_unknown")
    assert (
        crg(tmp_path, harness, "rejected", "list", "--reason", "units_not_found").stdout.strip()
        == "no rejected events match"
    )

    shown = crg(tmp_path, harness, "rejected", "show", str(row["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "reason:      key_unknown" in shown.stdout
    assert '"event_id": "evt-1"' in shown.stdout  # the value is decoded for the operator
    assert crg(tmp_path, harness, "rejected", "show", "999").returncode == 2

    harness.keys = KeyRing([key.record])  # registered late
    again = crg(tmp_path, harness, "rejected", "reprocess", "--reason", "key_unknown")
    assert again.returncode == 0, again.stderr
    assert "sent 1 event(s)" in again.stdout
    harness.sent += 1
    await harness.drain()
    await harness.stop()

    (verified,) = await harness.read(harness.topics.verified, expected=1)
    assert verified.value == message.value
    assert verified.headers["crg_reprocess_of"] == str(row["id"]).encode()
    assert crg(tmp_path, harness, "rejected", "list").stdout.strip() == "no rejected events match"
    everything = json.loads(crg(tmp_path, harness, "rejected", "list", "--all", "--json").stdout)
    assert [r["reprocessed_at"] is not None for r in everything] == [True]
    ledger.close()


async def test_what_a_sender_wrote_reaches_the_terminal_escaped(
    broker: Broker, tmp_path: Path
) -> None:
    """Anyone who can write the raw topic chooses a rejected event's headers and bytes:
    ``crg rejected list`` and ``show`` print escape sequences as text, never raw."""
    ledger = open_ledger(f"sqlite://{tmp_path / 'gateway' / 'ledger.sqlite'}")
    harness = await Harness(broker, ledger, KeyRing()).start()
    hostile = [
        ("crg_key_id", b"\x1b]0;owned\x07\x1b[2J"),
        ("crg_signature", b"AAAA"),
        ("x-\x1b[31mred", b"\x9b2J\xe2\x80\xae"),
    ]
    await harness.send((b"k\x1b[2J", b"\x1b[2J not avro", hostile))
    await harness.drain()
    await harness.stop()
    ledger.close()
    listed = crg(tmp_path, harness, "rejected", "list")
    assert listed.returncode == 0, listed.stderr
    (line,) = [x for x in listed.stdout.splitlines() if x.strip()[:1].isdigit()]
    shown = crg(tmp_path, harness, "rejected", "show", line.split()[0])
    assert shown.returncode == 0, shown.stderr
    for out in (listed.stdout, shown.stdout):
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
        assert "\u202e" not in out
    assert "\\x1b]0;owned\\x07" in shown.stdout
    assert "x-\\x1b[31mred" in shown.stdout
