"""AEF export from a Party's store, on the hand-written stories: the exact rows, and
totals that reconcile with the ledger."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
from openpyxl import load_workbook

from adapters.national.aef import SHEETS, Submission, tables, write_csv, write_xlsx
from adapters.national.store import NationalStore
from tests.support.national import NDC_FLOW, REVOKED, STORY, apply_all, events

SUBMITTED = dt.date(2027, 3, 31)


def test_ghana_2026_tables(ghana: NationalStore) -> None:
    # the story happens on 1 Feb (issue), 1 Mar (authorize), 1 Apr (to CHE), 1 May (CORSIA)
    apply_all(ghana, events("GH-1", STORY))
    data = tables(ghana.actions(), Submission("GHA", 2026, submitted_on=SUBMITTED))
    assert data["submission"][1] == ["GHA", "1.0", 2026, "31/03/2027", "", "", 2021, 2030, ""]
    (authorization,) = data["authorizations"][1:]
    assert authorization[:5] == ["GHA-LoA-2025-001", "01/03/2026", "CA0007", 1, 1000]
    assert authorization[10] == "NDC and OIMP"
    assert authorization[17] == "Authorisation"  # the first transfer definition for OIMP
    header, *rows = data["actions"]
    col = {name: i for i, name in enumerate(header)}
    picked = [
        (
            r[col["Action date"]],
            r[col["Action type"]],
            r[col["Action subtype"]],
            r[col["First ID"]],
            r[col["Last ID"]],
            r[col["Underlying unit registry ID"]],
            r[col["First unit ID"]],
            r[col["Quantity (t CO2 eq)"]],
            r[col["Acquiring participating Party ID"]],
            r[col["Purpose for which the ITMO has been used towards or cancelled for OIMP"]],
        )
        for r in rows
    ]
    assert picked == [
        (
            "01/03/2026",
            "Authorization",
            "",
            "CA0007-GHA01-GHA-1000-2024",
            "CA0007-GHA01-GHA-1999-2024",
            "VCS",
            1000,
            1000,
            "NA",
            "",
        ),
        (
            "01/03/2026",
            "First transfer",
            "Authorization",
            "CA0007-GHA01-GHA-1000-2024",
            "CA0007-GHA01-GHA-1999-2024",
            "VCS",
            1000,
            1000,
            "NA",
            "",
        ),
        (
            "01/04/2026",
            "Transfer",
            "",
            "CA0007-GHA01-GHA-1000-2024",
            "CA0007-GHA01-GHA-1399-2024",
            "VCS",
            1000,
            400,
            "CHE",
            "",
        ),
        (
            "01/05/2026",
            "Use",
            "",
            "CA0007-GHA01-GHA-1400-2024",
            "CA0007-GHA01-GHA-1499-2024",
            "VCS",
            1400,
            100,
            "NA",
            "CORSIA",
        ),
    ]
    # 31 December: Ghana holds the 500 units neither transferred nor used
    header, *holdings = data["holdings"]
    assert [(h[4], h[5], h[12]) for h in holdings] == [
        ("CA0007-GHA01-GHA-1500-2024", "CA0007-GHA01-GHA-1999-2024", 500)
    ]
    # reconciles with the live ledger
    assert sum(h[12] for h in holdings) == sum(h.quantity for h in ghana.holdings())
    summary = dict(data["summary"][1:])
    assert summary["Quantity held at 31 December"] == 500
    assert summary["Corresponding adjustments to add (first transfers in the year)"] == 1000
    assert summary["Quantity: Transfer"] == 400


def test_year_end_snapshot_is_frozen(ghana: NationalStore) -> None:
    """2025's holdings know nothing of 2026; 2027's equal the end of 2026."""
    apply_all(ghana, events("GH-1", STORY))
    empty = tables(ghana.actions(), Submission("GHA", 2025, submitted_on=SUBMITTED))
    assert empty["actions"][1:] == [] and empty["holdings"][1:] == []
    later = tables(ghana.actions(), Submission("GHA", 2027, submitted_on=SUBMITTED))
    assert later["actions"][1:] == []
    assert [h[12] for h in later["holdings"][1:]] == [500]


def test_switzerland_reports_its_acquisition(open_party) -> None:  # type: ignore[no-untyped-def]
    switzerland = open_party("CHE", "che")
    apply_all(switzerland, events("GH-1", STORY))
    data = tables(switzerland.actions(), Submission("CHE", 2026, submitted_on=SUBMITTED))
    header, *rows = data["actions"]
    col = {name: i for i, name in enumerate(header)}
    assert [
        (
            r[col["Action type"]],
            r[col["Transferring participating Party ID"]],
            r[col["Quantity (t CO2 eq)"]],
        )
        for r in rows
    ] == [("Acquisition", "GHA", 400)]
    assert data["authorizations"][1:] == []  # Switzerland authorized nothing
    assert [h[12] for h in data["holdings"][1:]] == [400]


def test_xlsx_and_csv_hold_the_same_tables(ghana: NationalStore, tmp_path: Path) -> None:
    apply_all(ghana, events("GH-1", STORY))
    data = tables(ghana.actions(), Submission("GHA", 2026, submitted_on=SUBMITTED))
    write_xlsx(tmp_path / "aef.xlsx", data)
    book = load_workbook(tmp_path / "aef.xlsx", read_only=True)
    assert book.sheetnames == list(SHEETS.values())
    for name, rows in data.items():
        read = [list(r) for r in book[SHEETS[name]].iter_rows(values_only=True)]
        assert read == [[None if v == "" else v for v in row] for row in rows]
    files = write_csv(tmp_path / "csv", data)
    with files[2].open(encoding="utf-8") as f:
        assert [r[1] for r in csv.reader(f)][1:] == [
            "Authorization",
            "First transfer",
            "Transfer",
            "Use",
        ]


@pytest.mark.parametrize("year", [1999, 2026])
def test_rows_have_as_many_cells_as_headers(ghana: NationalStore, year: int) -> None:
    apply_all(ghana, events("GH-1", STORY))
    for rows in tables(ghana.actions(), Submission("GHA", year)).values():
        assert {len(r) for r in rows[1:]} <= {len(rows[0])}


def _rows(data: dict, table: str, *columns: str) -> list[tuple]:  # type: ignore[type-arg]
    header, *rows = data[table]
    col = {name: i for i, name in enumerate(header)}
    return [tuple(r[col[c]] for c in columns) for r in rows]


def test_ndc_flow_revocation_and_split_in_the_aef(open_party) -> None:  # type: ignore[no-untyped-def]
    """The other stories of tests/unit/test_itmo_rules.py, as each Party reports them."""
    stream = events("GH-2", NDC_FLOW) + events("GH-3", REVOKED)
    ghana, switzerland = open_party("GHA", "gha"), open_party("CHE", "che")
    apply_all(ghana, stream)
    apply_all(switzerland, stream)
    gha = tables(ghana.actions(), Submission("GHA", 2026, submitted_on=SUBMITTED))
    che = tables(switzerland.actions(), Submission("CHE", 2026, submitted_on=SUBMITTED))
    columns = (
        "Action date",
        "Action type",
        "Action subtype",
        "First ID",
        "Last ID",
        "Quantity (t CO2 eq)",
        "Acquiring participating Party ID",
        "Transferring participating Party ID",
        "Calendar year for which the ITMOs are used towards the Party's NDC",
    )
    # Ghana: the NDC-only authorization (February), the revoked one is authorized in March
    # and its revocation is no AEF action; the first transfer to Switzerland in April
    assert _rows(gha, "actions", *columns) == [
        (
            "01/02/2026",
            "Authorization",
            "",
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5499-2023",
            500,
            "NA",
            "NA",
            "",
        ),
        (
            "01/03/2026",
            "Authorization",
            "",
            "CA0002-GHA01-GHA-8000-2024",
            "CA0002-GHA01-GHA-8099-2024",
            100,
            "NA",
            "NA",
            "",
        ),
        (
            "01/04/2026",
            "First transfer",
            "First transfer to another Party",
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5499-2023",
            500,
            "CHE",
            "NA",
            "",
        ),
    ]
    assert gha["holdings"][1:] == []  # all moved to Switzerland, or revoked
    assert (
        dict(gha["summary"][1:])["Corresponding adjustments to add (first transfers in the year)"]
        == 500
    )
    # Switzerland: the acquisition, then 200 used towards its NDC for 2026
    assert _rows(che, "actions", *columns) == [
        (
            "01/04/2026",
            "Acquisition",
            "",
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5499-2023",
            500,
            "NA",
            "GHA",
            "",
        ),
        (
            "01/05/2026",
            "Use",
            "",
            "CA0002-GHA01-GHA-5000-2023",
            "CA0002-GHA01-GHA-5199-2023",
            200,
            "NA",
            "NA",
            2026,
        ),
    ]
    # the block split: Switzerland holds the 300 it did not use
    assert _rows(che, "holdings", "First ID", "Last ID", "Quantity (t CO2 eq)") == [
        ("CA0002-GHA01-GHA-5200-2023", "CA0002-GHA01-GHA-5499-2023", 300)
    ]
    assert (
        dict(che["summary"][1:])[
            "Corresponding adjustments to subtract (uses towards the NDC in the year)"
        ]
        == 200
    )


def test_registry_text_never_becomes_a_formula_nor_aborts_the_export(tmp_path: Path) -> None:
    """A beneficiary or letter reference such as ``=HYPERLINK(…)`` was stored as a live
    formula in the XLSX; one vertical tab aborted the whole export."""
    hostile = ['=HYPERLINK("http://x.invalid","open")', "+1+1", "@SUM(A1)", "LoA\x0bref", "ok"]
    data = {"entities": [["header"] * len(hostile), hostile]}
    write_xlsx(tmp_path / "aef.xlsx", data)
    sheet = load_workbook(tmp_path / "aef.xlsx")[SHEETS["entities"]]
    (cells,) = sheet.iter_rows(min_row=2)
    assert [c.data_type for c in cells] == ["s"] * len(hostile)
    assert [c.value for c in cells] == [*hostile[:3], "LoA\ufffdref", "ok"]
    (path,) = write_csv(tmp_path / "csv", data)
    with path.open(encoding="utf-8") as f:
        row = list(csv.reader(f))[1]
    assert row[:3] == ["'" + v for v in hostile[:3]] and row[4] == "ok"
