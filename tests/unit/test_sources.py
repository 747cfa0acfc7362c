"""Registry exports and JSON lines to event drafts: real Verra rows, hand-checked."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from gateway.contract.models import RegistryEvent
from gateway.publishing.sources import Draft, Problem, SourceItem
from gateway.publishing.sources.jsonl import read_jsonl
from gateway.publishing.sources.verra import read_verra

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "registry-exports" / "verra"


def verra_items() -> list[SourceItem]:
    with (SAMPLE / "transactions.csv").open(encoding="utf-8-sig", newline="") as stream:
        return list(read_verra(stream))


def drafts(items: list[SourceItem], kind: str) -> list[Draft]:
    return [i for i in items if isinstance(i, Draft) and i.fields["payload"]["type"] == kind]


def test_every_row_of_the_real_export_becomes_events() -> None:
    items = verra_items()
    issued, retired = drafts(items, "UnitsIssued"), drafts(items, "UnitsRetired")
    assert [i for i in items if isinstance(i, Problem)] == []
    # 120 rows: 100 carry a retirement date; every row lies in exactly one issuance
    assert len(retired) == 100
    covered = Counter(r for d in issued for r in d.records)
    assert len(covered) == 120 and set(covered.values()) == {1}
    assert len(issued) == 44
    for sequence, d in enumerate(drafts(items, "UnitsIssued") + retired, start=1):
        RegistryEvent.model_validate({**d.fields, "sequence": sequence})


def test_project_4150_rwanda_is_one_article6_issuance() -> None:
    (batch,) = [
        d
        for d in drafts(verra_items(), "UnitsIssued")
        if d.fields["event_id"].startswith("verra:issuance:19309:")
    ]
    p = batch.fields["payload"]
    # rows 12-19 are contiguous sub-blocks 936487628..936494871 of batch 19309:
    # 3644 + 181 + 327 + 1302 + 20 + 1458 + 181 + 131 = 7244 units
    assert batch.records == tuple(f"row {n}" for n in range(12, 20))
    assert p["serial_block"] == {
        "serial": "19309-936487628-936494871-VCS-VCU-1491-VER-RW-3-4150-01102024-31122024-1",
        "start": 936487628,
        "end": 936494871,
    }
    assert p["quantity"] == 7244
    assert p["project"]["host_party"] == "RWA"
    assert p["vintage_start"] == "2024-10-01" and p["vintage_end"] == "2024-12-31"
    assert batch.fields["occurred_at"] == "2026-03-19T00:00:00Z"
    assert [(lbl["kind"], lbl.get("authorized_uses")) for lbl in p["labels"]] == [
        ("ARTICLE6_AUTHORIZATION", [{"purpose": "OIMP"}]),
        ("ARTICLE6_AUTHORIZATION", [{"purpose": "NDC"}]),
        ("ARTICLE6_AUTHORIZATION", [{"purpose": "OTHER_PURPOSES"}]),
        ("CORSIA_ELIGIBLE", None),
    ]
    assert all(lbl.get("host_party") in (None, "RWA") for lbl in p["labels"])


def test_gaps_in_a_batch_make_separate_issuances() -> None:
    runs = sorted(
        (d.fields["payload"]["serial_block"]["start"], d.fields["payload"]["serial_block"]["end"])
        for d in drafts(verra_items(), "UnitsIssued")
        if d.fields["event_id"].startswith("verra:issuance:19259:")
    )
    # rows of batch 19259: 933637722-729, -730-747, -748-784 | 933638957-933640290 |
    # 933640401-882, 933641883-4727, 933644728-768 (rows between are not in the sample)
    assert runs == [(933637722, 933637784), (933638957, 933640290), (933640401, 933644768)]


def test_retirements_keep_beneficiary_reason_and_date() -> None:
    retired = {
        d.fields["payload"]["serial_block"]["start"]: d
        for d in drafts(verra_items(), "UnitsRetired")
    }
    lindblad = retired[941412555].fields
    assert lindblad["payload"]["quantity"] == 28571
    assert lindblad["payload"]["beneficiary"] == "Lindblad Expeditions Family of Companies"
    assert lindblad["payload"]["purpose"] == "VOLUNTARY_CLAIM"
    assert lindblad["payload"]["retired_on"] == "2026-04-06"
    ethiopia = retired[941467007].fields["payload"]
    assert (ethiopia["quantity"], ethiopia["purpose"], ethiopia["beneficiary"]) == (
        425,
        "UNSPECIFIED",
        None,
    )
    rwanda = retired[936487628].fields["payload"]
    assert rwanda["purpose"] == "OTHER"
    assert rwanda["details"] == "2% retirement as required under Project 4150 LoA for Article 6"


def test_issuances_come_before_retirements_and_in_time_order() -> None:
    items = [i for i in verra_items() if isinstance(i, Draft)]
    kinds = [i.fields["payload"]["type"] for i in items]
    assert kinds == ["UnitsIssued"] * 44 + ["UnitsRetired"] * 100
    times = [i.fields["occurred_at"] for i in items[:44]]
    assert times == sorted(times)


def test_multi_country_project_takes_the_serials_country_with_a_note() -> None:
    items = verra_items()
    sara = [d for d in drafts(items, "UnitsIssued") if d.fields["project_id"] == "3432"]
    assert {d.fields["payload"]["project"]["host_party"] for d in sara} == {"PRY"}
    notes = [n for d in sara for n in d.notes]
    assert notes == [
        "row 118: Country/Area 'Chile' (CHL) differs from the serial's country PRY; "
        "host Party taken from the serial",
        "row 119: Country/Area 'Chile' (CHL) differs from the serial's country PRY; "
        "host Party taken from the serial",
    ]


HEADER = (
    "Issuance Date,Sustainable Development Goals,Vintage Start,Vintage End,ID,Name,"
    "Country/Area,Project Type,Methodology,Total Vintage Quantity,Quantity Issued,"
    "Serial Number,Additional Certifications,Retirement/Cancellation Date,"
    "Retirement Beneficiary,Retirement Reason,Retirement Details\n"
)
GOOD = (
    '2026-04-03,,2020-01-01,2020-12-31,1340,Bale,Ethiopia,AFOLU,VM0015,"1,454,054",425,'
    "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1,,"
    "2026-04-10,,,\n"
)


def test_bad_rows_are_reported_with_their_line_and_the_rest_kept() -> None:
    bad_quantity = GOOD.replace(",425,", ",426,")
    bad_serial = GOOD.replace("19385-941467007", "19385-X")
    bad_date = GOOD.replace("2026-04-10", "10/04/2026")
    other_project = GOOD.replace(",1340,Bale", ",1341,Bale")
    text = HEADER + GOOD + bad_quantity + bad_serial + bad_date + other_project
    items = list(read_verra(io.StringIO(text)))
    problems = [i for i in items if isinstance(i, Problem)]
    assert [p.location for p in problems] == ["row 3", "row 4", "row 5", "row 6"]
    assert "Quantity Issued 426 differs from the serial range size 425" in problems[0].message
    assert "not in Verra's VCU format" in problems[1].message
    assert "bad date" in problems[2].message
    assert "differs from the serial's '1340'" in problems[3].message
    assert [d.location for d in items if isinstance(d, Draft)] == ["row 2", "row 2"]


def test_overlapping_rows_of_one_batch_are_reported() -> None:
    items = list(read_verra(io.StringIO(HEADER + GOOD + GOOD)))
    problems = [i for i in items if isinstance(i, Problem)]
    assert [(p.location, "overlaps row 2" in p.message) for p in problems] == [("row 3", True)]


def test_jsonl_reports_malformed_lines_by_number() -> None:
    text = '{"event_id": "a"}\n\nnot json\n[1, 2]\n{"event_id": "b"}\n'
    items = list(read_jsonl(io.StringIO(text)))
    assert [(type(i).__name__, i.location) for i in items] == [
        ("Draft", "line 1"),
        ("Problem", "line 3"),
        ("Problem", "line 4"),
        ("Draft", "line 5"),
    ]
    assert "expected a JSON object, got list" in items[2].message  # type: ignore[union-attr]
