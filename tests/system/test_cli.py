"""The ``crg`` command as a user runs it: keys, publish against the real broker, up."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.contract.keys import KeyRecord
from gateway.keystore.private import private_key_path
from tests.factories import envelope, issued
from tests.support.brokers import BROKERS, Broker

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "registry-exports" / "verra" / "transactions.csv"


def crg(
    data_dir: Path,
    *args: str,
    bootstrap: str | None = None,
    stdin: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRG_LOG_FORMAT": "json", **(env_extra or {})}
    env.pop("CRG_KEY_PASSPHRASE", None)
    cmd = [sys.executable, "-m", "gateway", "--data-dir", str(data_dir)]
    if bootstrap:
        cmd += ["--bootstrap-servers", bootstrap]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=env, input=stdin, timeout=120, cwd=REPO
    )


def private_pem_bodies(data_dir: Path) -> list[str]:
    folder = data_dir / "keys" / "private"
    return [
        line
        for p in folder.glob("*.pem")
        for line in p.read_text().splitlines()
        if line and not line.startswith("-----")
    ]


def verra_key_for_history(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """A registered Verra key valid far enough back to sign the sample's history."""
    return crg(
        data_dir,
        "keys",
        "generate",
        "--registry",
        "verra",
        "--register",
        "--valid-from",
        "2016-01-01T00:00:00Z",
    )


def test_key_lifecycle(tmp_path: Path) -> None:
    out = crg(
        tmp_path,
        "keys",
        "generate",
        "--registry",
        "verra",
        "--register",
        "--valid-from",
        "2026-01-01T00:00:00Z",
    )
    assert out.returncode == 0, out.stderr
    key_id = next(
        line.split()[-1] for line in out.stdout.splitlines() if line.startswith("key id:")
    )
    assert key_id.startswith("verra-20260101-")
    pem = tmp_path / "keys" / "private" / f"{key_id}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600

    listed = json.loads(crg(tmp_path, "keys", "list", "--json").stdout)
    assert [(k["key_id"], k["valid_until"], k["revoked_at"]) for k in listed] == [
        (key_id, None, None)
    ]

    rotated = crg(tmp_path, "keys", "rotate", "--registry", "verra", "--overlap-hours", "2")
    assert rotated.returncode == 0, rotated.stderr
    assert f"closed:     {key_id} valid until" in rotated.stdout
    listed = json.loads(crg(tmp_path, "keys", "list", "--json").stdout)
    assert len(listed) == 2 and listed[0]["valid_until"] is not None

    revoked = crg(
        tmp_path,
        "keys",
        "revoke",
        "--key-id",
        key_id,
        "--at",
        "2026-02-01T00:00:00Z",
        "--reason",
        "superseded",
    )
    assert revoked.returncode == 0, revoked.stderr
    listed = {k["key_id"]: k for k in json.loads(crg(tmp_path, "keys", "list", "--json").stdout)}
    assert listed[key_id]["revoked_at"] == "2026-02-01T00:00:00Z"
    assert listed[key_id]["revocation_reason"] == "superseded"

    unknown = crg(tmp_path, "keys", "revoke", "--key-id", "nope")
    assert unknown.returncode == 2 and "no key 'nope'" in unknown.stderr

    # register a public key brought by a registry; refuse a rebinding of its id
    def register(public_key: bytes, key_id: str) -> subprocess.CompletedProcess[str]:
        return crg(
            tmp_path,
            "keys",
            "register",
            "--registry",
            "gold-standard",
            "--public-key",
            base64.b64encode(public_key).decode(),
            "--key-id",
            key_id,
        )

    reg = register(os.urandom(32), "gs-1")
    assert reg.returncode == 0, reg.stderr
    clash = register(os.urandom(32), "gs-1")
    assert clash.returncode == 2 and "already registered" in clash.stderr
    short = crg(tmp_path, "keys", "register", "--registry", "x", "--public-key", "AAAA")
    assert short.returncode == 2 and "32-byte" in short.stderr

    for line in private_pem_bodies(tmp_path):
        for run in (out, rotated, revoked, reg):
            assert line not in run.stdout and line not in run.stderr


@pytest.mark.broker
def test_publish_the_real_export_then_again(tmp_path: Path, broker: Broker) -> None:
    gen = verra_key_for_history(tmp_path)
    assert gen.returncode == 0, gen.stderr
    prefix = [
        "publish",
        "--format",
        "verra",
        "--registry",
        "verra",
        "--create-topics",
        "--no-progress",
        str(SAMPLE),
    ]
    own_topics = {"CRG_TOPIC_PREFIX": f"cli{os.getpid()}"}
    first = crg(tmp_path, *prefix, bootstrap=broker.bootstrap_servers, env_extra=own_topics)
    second = crg(tmp_path, *prefix, bootstrap=broker.bootstrap_servers, env_extra=own_topics)
    assert first.returncode == 0, first.stderr
    assert "sent: 144 (UnitsIssued 44, UnitsRetired 100)" in first.stdout
    assert "invalid: 0" in first.stdout and "failed to send: 0" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "sent: 0" in second.stdout and "already published (skipped): 144" in second.stdout
    for line in private_pem_bodies(tmp_path):
        assert line not in first.stdout + first.stderr


@pytest.mark.broker
def test_publish_jsonl_from_stdin_with_a_bad_line(tmp_path: Path, broker: Broker) -> None:
    verra_key_for_history(tmp_path)
    good = {k: v for k, v in envelope(issued()).items() if k != "sequence"}
    text = json.dumps(good) + "\n{oops\n"
    run = crg(
        tmp_path,
        "publish",
        "--registry",
        "verra",
        "--create-topics",
        "-",
        bootstrap=broker.bootstrap_servers,
        stdin=text,
    )
    assert run.returncode == 3, run.stderr
    assert "sent: 1 (UnitsIssued 1)" in run.stdout
    assert "invalid line 2: not JSON" in run.stdout


def test_publish_without_a_key_says_how_to_make_one(tmp_path: Path) -> None:
    run = crg(tmp_path, "publish", "--registry", "verra", "-", stdin="")
    assert run.returncode == 2
    assert "crg keys generate --registry verra --register" in run.stderr


def _line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


@pytest.mark.broker
@pytest.mark.parametrize("kind", BROKERS)
def test_up_once_runs_the_feed_end_to_end_and_a_second_run_changes_nothing(
    tmp_path: Path, kind: str
) -> None:
    """On tansu (memory) the second run publishes everything again with the same bytes;
    on Apache Kafka (its log kept in the data directory) it publishes nothing new."""
    run = crg(tmp_path, "up", "--once", "--broker", kind)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "120 export rows → 144 events" in out
    assert (
        "verified as any downstream party would: AuthorizationLabelApplied 1, "
        "UnitsIssued 45, UnitsRetired 102, UnitsTransferred 1"
    ) in out  # the story in one step: the use after the transfer is ordered downstream
    # the Verra sample and the story: 149 events accepted, none rejected
    assert _line(out, "gateway ledger:") == "gateway ledger: 149 events accepted, 0 rejected"
    # the story, as each Party's ledger has it (tests/unit/test_itmo_rules.py has the rules)
    assert _line(out, "ITMO ledger of GHA:").startswith(
        "ITMO ledger of GHA: 4 actions (AUTHORIZATION 1, FIRST_TRANSFER 1, TRANSFER 1, USE_OIMP 1)"
    )
    assert _line(out, "ITMO ledger of CHE:").startswith(
        "ITMO ledger of CHE: 2 actions (ACQUISITION 1, USE_NDC 1)"
    )
    assert "  corresponding adjustment: GHA ADD 10,000 for 2025" in out
    assert "  corresponding adjustment: CHE SUBTRACT 2,500 for 2026" in out
    assert _line(out, "international registry adapter:") == (
        "international registry adapter: 6 recorded"
    )
    assert "  emulator holds for GHA: 5,000 ITMOs" in out
    assert "  emulator holds for CHE: 1,500 ITMOs" in out
    assert "followed to the ITMO ledgers and the international registry" in out

    assert "149 new; 149 on crg.registry.events" in out
    again = crg(tmp_path, "up", "--once", "--broker", kind)  # same data dir, key and bytes
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("registry key: verra / ") == 1
    assert (
        out.split("registry key: ")[1].split()[2]
        == again.stdout.split("registry key: ")[1].split()[2]
    )
    # nothing duplicated: same ledgers, same digests, no new action reached the registry
    for start in (
        "gateway ledger:",
        "  122 unit blocks",
        "ITMO ledger of GHA:",
        "ITMO ledger of CHE:",
        "international registry adapter:",
    ):
        assert _line(again.stdout, start) == _line(out, start)
    if kind == "kafka":  # the topics and the offsets were kept: nothing to send or judge
        assert "0 new; 149 on crg.registry.events" in again.stdout
        assert "through: judged 149, verified 0, actions 0, answered 6" in again.stdout
    else:  # everything published again, judged again, changing nothing
        assert "149 new; 149 on crg.registry.events" in again.stdout
        assert "through: judged 149, verified 0, actions 0, answered 0" in again.stdout


def test_a_registry_id_cannot_lead_a_key_out_of_its_folder(tmp_path: Path) -> None:
    """``--registry ../../../escaped`` wrote a private key outside the key folder."""
    data = tmp_path / "deep" / "data"
    for args in (
        ["keys", "generate", "--registry", "../../../escaped", "--register"],
        ["keys", "generate", "--registry", "verra/../../x"],
        ["keys", "register", "--registry", "..", "--public-key", "A" * 43 + "="],
        ["publish", "--registry", "../x", "-"],
    ):
        done = crg(data, *args, stdin="")
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "not a registry id" in done.stderr
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_key_records_and_key_files_refuse_names_that_are_not_ids(tmp_path: Path) -> None:
    public = bytes(32)
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for owner, key_id in (("../x", "x-1"), ("verra", "../../x"), ("verra", "a/b"),
                          ("Verra", "v-1"), ("party:gha", "p-1")):  # fmt: skip
        with pytest.raises(ValueError):
            KeyRecord(owner, key_id, public, when)
    for key_id in ("../x", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            private_key_path(tmp_path, key_id)
    assert private_key_path(tmp_path, "party:GHA-20260101-abcd").parent == tmp_path
