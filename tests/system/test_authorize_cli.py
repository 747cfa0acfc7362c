"""``crg authorize`` and ``crg authorizations`` against a real broker: a host Party
publishes, restates and revokes a letter of authorization signed with its own key; the
listing verifies every message as a national adapter does, and refuses what the Party
did not sign."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from gateway.contract.authorization import encode_authorization
from tests.support.brokers import Broker
from tests.system.test_cli import crg
from tests.unit.test_party_authorizations import letter

AUTHORIZE = [
    "authorize", "--party", "GHA", "--letter", "GHA-LOA-1", "--approach", "CA0001",
    "--use", "NDC", "--use", "OIMP:CORSIA", "--first-transfer", "AUTHORIZATION",
    "--registry", "verra", "--project", "VCS-1", "--vintages", "2021-2024",
    "--serials", "1000-1999", "--valid-from", "2026-01-01",
]  # fmt: skip


def test_a_party_publishes_restates_and_revokes_its_letter(tansu: Broker, tmp_path: Path) -> None:
    data, boot = tmp_path / "ghana", tansu.bootstrap_servers
    env = {"CRG_TOPIC_PREFIX": f"auth-{uuid.uuid4().hex[:8]}"}

    def run(*args: str) -> tuple[int, str, str]:
        done = crg(data, *args, bootstrap=boot, env_extra=env)
        return done.returncode, done.stdout, done.stderr

    # no key of Ghana's yet: refused before any connection, saying what to do
    code, _, err = run(*AUTHORIZE)
    assert code == 2 and "crg keys generate --party GHA --register" in err
    assert run("keys", "generate", "--party", "GHA", "--register")[0] == 0

    code, out, err = run(*AUTHORIZE)
    assert code == 0, err
    assert "published GHA's letter 'GHA-LOA-1' version 1" in out
    code, out, _ = run(*AUTHORIZE, "--vintages", "2021-2025", "--reason", "vintage 2025 added")
    assert code == 0 and "version 2" in out

    code, out, _ = run("authorizations", "--json")
    assert code == 0
    (shown,) = json.loads(out)["authorizations"]
    assert (shown["version"], shown["vintage_last"], shown["status"]) == (2, 2025, "AUTHORIZED")
    assert shown["serial_blocks"] == [{"series": "", "start": 1000, "end": 1999}]

    # someone with write access to the topic: an unsigned letter and Ghana's letter
    # re-stated by an unknown key are listed as refused and never in force
    async def forge() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=boot)
        await producer.start()
        try:
            topic = f"{env['CRG_TOPIC_PREFIX']}.article6.authorizations"
            value = encode_authorization(letter(letter_of_authorization="GHA-LOA-1", version=9))
            await producer.send_and_wait(topic, value, key=b"GHA/GHA-LOA-1")
            await producer.send_and_wait(
                topic, value, key=b"GHA/GHA-LOA-1",
                headers=[("crg_key_id", b"party:GHA-forged"), ("crg_signature", b"AAAA")],
            )  # fmt: skip
        finally:
            await producer.stop()

    asyncio.run(forge())
    code, out, _ = run("authorizations")
    assert code == 1
    assert "GHA GHA-LOA-1 v2 AUTHORIZED CA0001 verra" in out
    assert "signature_missing" in out and "key_unknown" in out
    assert "4 messages; 1 letters; 2 refused" in out

    code, out, _ = run("authorize", "--party", "GHA", "--letter", "GHA-LOA-1", "--revoke",
                       "--reason", "withdrawn")  # fmt: skip
    assert code == 0 and "revoked GHA's letter 'GHA-LOA-1' version 3" in out
    code, out, _ = run("authorizations", "--json", "--party", "GHA")
    (shown,) = json.loads(out)["authorizations"]
    assert (shown["version"], shown["status"], shown["reason"]) == (3, "REVOKED", "withdrawn")

    # what cannot be an authorization is refused with the field, nothing published
    code, _, err = run(*AUTHORIZE[:-2], "--valid-from", "2026-01-01", "--approach", "CA1")
    assert code == 2 and "cooperative_approach" in err
    code, _, err = run("authorize", "--party", "GHA", "--letter", "GHA-LOA-2")
    assert code == 2 and "--approach, --use, --first-transfer, --registry" in err
