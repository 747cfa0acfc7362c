"""``crg reconcile`` on the real Verra sample and on Ghana's ITMO ledger: all reconcile;
then each kind of tampering is found, block by block."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.national.store import open_national_store
from gateway.cli.main import main as crg
from gateway.cli.reconcile import export_events
from gateway.ranges import block_key
from gateway.service.judge import Outcome
from gateway.service.ledger.backends import open_ledger
from gateway.service.ledger.memory import MemoryLedger
from gateway.service.ledger.rules import Change, decide
from gateway.service.ledger.store import LedgerStore
from tests.support.national import STORY, apply_all, events

SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "samples"
    / "registry-exports"
    / "verra"
    / "transactions.csv"
)


def judge_all(ledger: LedgerStore, stream: list) -> None:  # type: ignore[type-arg]
    """Every event accepted by the rules, and the blocks they leave written."""
    memory, before = MemoryLedger(), ledger.blocks()
    for b in before:
        memory.insert(b)
    for e in stream:
        decision = decide(e, memory)
        assert isinstance(decision, Change), decision
        memory.apply(decision)
    with ledger.transaction():
        ledger.record(Outcome(deleted=[block_key(b) for b in before], added=memory.blocks()))


def test_reconcile_against_the_export_and_an_itmo_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger_url = f"sqlite://{tmp_path / 'ledger.sqlite'}"
    ledger = open_ledger(ledger_url)
    sample = export_events(SAMPLE)
    story = events("GH-1", STORY, registry="demo")  # not part of the Verra export
    judge_all(ledger, sample)
    judge_all(ledger, [e.model_copy(update={"sequence": 1000 + i}) for i, e in enumerate(story)])
    ghana = open_national_store(f"sqlite://{tmp_path / 'national' / 'GHA.sqlite'}", "GHA")
    apply_all(ghana, story)
    ghana.close()
    base = ["--data-dir", str(tmp_path), "reconcile", "--ledger", ledger_url]

    assert crg([*base, "--export", str(SAMPLE), "--party", "GHA"]) == 0
    out = capsys.readouterr().out
    assert "against transactions.csv: no difference" in out
    assert "serial blocks of the export: no difference" in out
    assert "ITMO blocks of GHA against the ledger (3 blocks): no difference" in out

    # tamper: a retired block of the sample turns active; the CORSIA-used ITMOs too
    retired = next(
        b
        for b in ledger.blocks()
        if b.status.value == "retired" and b.registry_id == "verra" and b.project_id != "GH-1"
    )
    used = next(
        b for b in ledger.blocks() if b.project_id == "GH-1" and b.status.value == "retired"
    )
    with ledger.transaction():
        for b in (retired, used):
            ledger.db.execute(
                "UPDATE blocks SET status = 'active' WHERE registry_id = ? AND"
                " series = ? AND start_no = ?",
                (b.registry_id, b.series, b.start),
            )
    ledger.close()
    assert crg([*base, "--export", str(SAMPLE), "--party", "GHA"]) == 1
    out = capsys.readouterr().out
    assert f"verra / {retired.project_id} / {retired.vintage}: ledger issued" in out
    assert "serial blocks of the export: 1 differ" in out  # the retirement in that block
    assert (
        f"demo units {used.start}-{used.end}: ledger active {used.size:,} | other ITMO state USED"
        in out
    )
    assert "difference(s)" in out
    assert crg(["--data-dir", str(tmp_path), "reconcile"]) == 2  # nothing to compare with
