"""``crg replay`` on a real broker: into a scratch store the digests reconcile; over the
live store nothing changes and nothing is emitted again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.national.store import open_national_store
from gateway.contract.keys import KeyRing
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.topics import Topics
from ops.processes import trust_store
from tests.conftest import RegistryKey
from tests.support.brokers import Broker
from tests.support.harness import Harness, read_to_end
from tests.support.national import LETTERS
from tests.system.test_cli import crg
from tests.system.test_national_adapter import run_adapter, signed_stream


async def test_replays_reconcile_and_change_nothing(broker: Broker, tmp_path: Path) -> None:
    data = tmp_path / "data"
    prefix = f"replay{tmp_path.name[-6:].replace('_', '')}"
    key = RegistryKey("verra")
    ledger = open_ledger(f"sqlite://{data / 'gateway' / 'ledger.sqlite'}")
    harness = await Harness(broker, ledger, KeyRing([key.record]), topics=Topics(prefix)).start()
    await harness.publish_letters(*LETTERS)  # Ghana's letters confirm the stories' labels
    trust_store(data, list(harness.trust))  # the live gateway's key and Ghana's too
    await harness.send(*signed_stream(key))
    await harness.drain()
    await harness.stop()
    ledger_digest = ledger.digest()
    ledger.close()
    ghana = open_national_store(f"sqlite://{data / 'national' / 'GHA.sqlite'}", "GHA")
    await run_adapter(harness, ghana, 12)
    digest, counts = ghana.digest(), ghana.counts()
    ghana.close()
    emitted = len(await read_to_end(broker, harness.topics.itmo_actions))
    env = {"CRG_TOPIC_PREFIX": prefix}

    def replay(*args: str) -> tuple[int, str]:
        run = crg(data, "replay", *args, bootstrap=broker.bootstrap_servers, env_extra=env)
        return run.returncode, run.stdout + run.stderr

    for consumer in (["national", "--party", "GHA"], ["gateway"]):
        scratch = tmp_path / f"scratch-{consumer[0]}"
        code, out = await asyncio.to_thread(replay, *consumer, "--into", str(scratch))
        assert code == 0, out
        assert "reconciled: the replay rebuilt the live store exactly" in out, out
    assert open_ledger(f"sqlite://{tmp_path / 'scratch-gateway' / 'gateway.sqlite'}").digest() == (
        ledger_digest
    )

    # over the live store, from the start: nothing changes, nothing is emitted again
    code, out = await asyncio.to_thread(replay, "national", "--party", "GHA", "--from-offset", "0")
    assert code == 0 and "done: 12 messages handled" in out, out
    again = open_national_store(f"sqlite://{data / 'national' / 'GHA.sqlite'}", "GHA")
    assert (again.digest(), again.counts()) == (digest, counts)
    again.close()
    assert len(await read_to_end(broker, harness.topics.itmo_actions)) == emitted
    verified = len(await read_to_end(broker, harness.topics.verified))
    code, out = await asyncio.to_thread(replay, "gateway", "--from-offset", "0")
    assert code == 0 and "done: 12 messages handled" in out, out
    live_ledger = open_ledger(f"sqlite://{data / 'gateway' / 'ledger.sqlite'}")
    assert (live_ledger.digest(), live_ledger.accepted_count()) == (ledger_digest, 12)
    live_ledger.close()
    assert len(await read_to_end(broker, harness.topics.verified)) == verified  # all repeats

    # a scratch store that differs is reported with its first differing record
    tampered = open_national_store(
        f"sqlite://{tmp_path / 'scratch-national' / 'national-GHA.sqlite'}", "GHA"
    )
    with tampered.transaction():
        tampered.db.execute("UPDATE itmo_actions SET quantity = quantity + 1 WHERE rowid = 1")
    tampered.close()
    live = open_national_store(f"sqlite://{data / 'national' / 'GHA.sqlite'}", "GHA")
    assert live.digest() == digest
    live.close()
    code, out = await asyncio.to_thread(
        replay, "national", "--party", "GHA", "--into", str(tmp_path / "scratch-national")
    )
    assert code == 1, out
    assert "DIFFERENT — first difference:" in out and "record " in out
