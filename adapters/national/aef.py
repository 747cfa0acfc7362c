"""The Agreed Electronic Format (AEF) a Party submits each year: five tables built from
its ITMO ledger, written as XLSX (one sheet per table) or CSV (one file per table).

Field labels are those of the CMA.6 template as transcribed in
``../shared/research/article6-formats.md`` §1.3 ([S]: the official XLSX for this version
was not seen). Choices where the sources leave room, documented in
``docs/national-registry.md``: First ID / Last ID hold the full ITMO identifier; dates
are dd/mm/yyyy as in the printed annex; Table 2 lists every authorization by the Party
up to the end of the year; Table 4 is the Party's position at 31 December 24:00 UTC,
computed from its actions (a frozen snapshot, not the live state); fields the event
stream does not carry (sectors, activity types, mitigation type, entities) are left
empty rather than invented.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from gateway.contract.itmo import AEF_ACTION_TYPE, ActionType, ItmoAction

SHEETS = {
    "submission": "Table 1 Submission",
    "authorizations": "Table 2 Authorizations",
    "actions": "Table 3 Actions",
    "holdings": "Table 4 Holdings",
    "entities": "Table 5 Auth. entities",
    "summary": "Summary information",
}

SUBMISSION = [
    "Party", "Version", "Reported year", "Date of submission",
    "Review status of the initial report",
    "Result of the consistency check of this AEF submission",
    "First year of the NDC implementation period", "Last year of the NDC implementation period",
    "Reference to the Article 6 technical expert review report of the initial report",
]  # fmt: skip
AUTHORIZATIONS = [
    "Authorization ID", "Date of authorization", "Cooperative approach ID",
    "Version of the authorization", "Authorized quantity", "Metric", "Applicable GWP value(s)",
    "Applicable non-GHG metric", "Sector(s)", "Activity type(s)", "Purposes for authorization",
    "Authorized Party(ies) ID", "Authorized entity(ies) ID", "OIMP authorized by the Party",
    "Authorized timeframe", "Authorization terms and conditions", "Authorization documentation",
    "First transfer definition for OIMP", "Additional explanatory information",
]  # fmt: skip
ACTIONS = [
    "Action date", "Action type", "Action subtype", "Cooperative approach ID", "Authorization ID",
    "First transferring participating Party ID", "Party ITMO registry ID", "First ID", "Last ID",
    "Underlying unit registry ID", "First unit ID", "Last unit ID", "Metric",
    "Applicable GWP value(s)", "Applicable non-GHG metric", "Quantity (t CO2 eq)",
    "Quantity (in non-GHG metric)", "Mitigation type", "Vintage",
    "Transferring participating Party ID", "Acquiring participating Party ID",
    "Purpose for which the ITMO has been used towards or cancelled for OIMP",
    "Using/cancelling participating Party ID", "Using/cancelling authorized entity ID",
    "Calendar year for which the ITMOs are used towards the Party's NDC",
    "Result of the consistency checks", "Additional explanatory information",
]  # fmt: skip
HOLDINGS = [
    "Cooperative approach ID", "Authorization ID", "First transferring participating Party ID",
    "Party ITMO registry ID", "First ID", "Last ID", "Underlying unit registry ID",
    "First unit ID", "Last unit ID", "Metric", "Applicable GWP value(s)",
    "Applicable non-GHG metric", "Quantity (t CO2 eq)", "Quantity (in non-GHG metric)",
    "Mitigation type", "Vintage",
]  # fmt: skip
ENTITIES = [
    "Date of the authorization", "Name", "Country of incorporation",
    "Identification number (in the country of incorporation)", "Cooperative approach ID",
    "Conditions", "Change and revocation conditions", "Additional explanatory information",
]  # fmt: skip
SUMMARY = ["Item", "Value"]

#: crediting-program registry → the nomenclature's underlying unit registry id (31(b))
UNDERLYING_REGISTRY = {
    "verra": "VCS", "gold-standard": "GS", "car": "CAR", "climate-action-reserve": "CAR",
    "acr": "ACR", "art": "ART", "art-trees": "ART", "gcc": "GCC", "cercarbono": "Cercarbono",
    "isometric": "Isometric", "t-ver": "T-VER", "jcm": "JCM",
}  # fmt: skip
FIRST_TRANSFER_FOR_OIMP = {
    "AUTHORIZATION": "Authorisation",
    "ISSUANCE": "Issuance",
    "USE_OR_CANCELLATION": "Use or Cancellation",
}
NA = "NA"


def _date(iso: str) -> str:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%d/%m/%Y")


def _year_end(year: int) -> str:
    return f"{year + 1:04d}-01-01T00:00:00Z"


@dataclass(frozen=True)
class Held:
    """A piece of the Party's holdings, with the action that brought it in."""

    start: int
    end: int
    source: ItmoAction


@dataclass
class Position:
    """The Party's holdings, rebuilt by sweeping its actions in order."""

    held: dict[tuple[str, str], list[Held]] = field(default_factory=dict)
    transferred: set[tuple[str, str, int]] = field(default_factory=set)  # first transfers

    def add(self, a: ItmoAction) -> None:
        self.remove(a)
        pieces = self.held.setdefault((a.registry_id, a.series), [])
        pieces.append(Held(a.unit_first, a.unit_last, a))
        pieces.sort(key=lambda h: h.start)

    def remove(self, a: ItmoAction) -> None:
        pieces = self.held.get((a.registry_id, a.series), [])
        kept: list[Held] = []
        for h in pieces:
            if h.end < a.unit_first or h.start > a.unit_last:
                kept.append(h)
                continue
            if h.start < a.unit_first:
                kept.append(Held(h.start, a.unit_first - 1, h.source))
            if h.end > a.unit_last:
                kept.append(Held(a.unit_last + 1, h.end, h.source))
        self.held[(a.registry_id, a.series)] = kept

    def apply(self, a: ItmoAction) -> None:
        t = a.action_type
        if t in (ActionType.AUTHORIZATION, ActionType.ACQUISITION):
            self.add(a)
        elif t == ActionType.FIRST_TRANSFER:
            self.transferred.add((a.registry_id, a.series, a.unit_first))
            if a.acquiring_party:
                self.remove(a)
        elif t == ActionType.LABEL_REVOCATION:
            if (a.details or "").startswith("revoked after first transfer"):
                return  # the ITMOs stand
            self.remove(a)
        else:  # transfer out, use, cancellation
            self.remove(a)

    def rows(self) -> list[tuple[Held, ItmoAction]]:
        return [(h, h.source) for key in sorted(self.held) for h in self.held[key]]


def position_at(actions: Iterable[ItmoAction], moment: str) -> Position:
    """The Party's holdings at ``moment`` (ISO 8601 UTC), from actions in their order."""
    position = Position()
    for a in actions:
        if a.occurred_at < moment:
            position.apply(a)
    return position


@dataclass(frozen=True)
class Submission:
    party: str
    year: int
    version: str = "1.0"
    submitted_on: dt.date | None = None
    ndc_first_year: int = 2021
    ndc_last_year: int = 2030


def _serials(a: ItmoAction, start: int, end: int) -> tuple[str, str]:
    offset = a.serial_first - a.unit_first
    first = a.first_id.with_serial(start + offset)
    return str(first), str(first.with_serial(end + offset))


def _underlying(registry_id: str) -> str:
    return UNDERLYING_REGISTRY.get(registry_id, NA)


def authorization_rows(actions: Sequence[ItmoAction], party: str, year: int) -> list[list[Any]]:
    end = _year_end(year)
    found: dict[tuple[str, str], list[ItmoAction]] = {}
    for a in actions:
        if a.action_type == ActionType.AUTHORIZATION and a.party == party and a.occurred_at < end:
            found.setdefault((a.authorization_id, a.cooperative_approach), []).append(a)
    rows = []
    for (auth_id, ca), group in sorted(found.items()):
        first = min(group, key=lambda a: a.occurred_at)
        oimp = "OIMP" in first.purposes or "OP" in first.purposes
        rows.append([
            auth_id, _date(first.occurred_at), ca, 1, sum(a.quantity for a in group), "GHG", "",
            NA, "", "", first.purposes, "", "", "", "", "", "",
            _first_transfer_definition(first) if oimp else "", "",
        ])  # fmt: skip
    return rows


def _first_transfer_definition(a: ItmoAction) -> str:
    return FIRST_TRANSFER_FOR_OIMP.get(a.first_transfer_definition or "", "")


def action_rows(actions: Sequence[ItmoAction], year: int) -> list[list[Any]]:
    start, end = f"{year:04d}-01-01T00:00:00Z", _year_end(year)
    rows = []
    for a in actions:
        if not start <= a.occurred_at < end or a.action_type not in AEF_ACTION_TYPE:
            continue
        rows.append([
            _date(a.occurred_at), AEF_ACTION_TYPE[a.action_type], a.subtype or "",
            a.cooperative_approach, a.authorization_id, a.first_transferring_party,
            a.party_registry, str(a.first_id), str(a.last_id), _underlying(a.registry_id),
            a.unit_first, a.unit_last, "GHG", "", NA, a.quantity, NA, "", a.vintage,
            a.transferring_party or NA, a.acquiring_party or NA,
            a.oimp_purpose or "", a.using_party or NA, a.using_entity or "",
            a.ndc_year if a.ndc_year is not None else "", "", a.details or "",
        ])  # fmt: skip
    return rows


def holding_rows(position: Position) -> list[list[Any]]:
    rows = []
    for held, a in position.rows():
        first, last = _serials(a, held.start, held.end)
        rows.append([
            a.cooperative_approach, a.authorization_id, a.first_transferring_party,
            a.party_registry, first, last, _underlying(a.registry_id), held.start, held.end,
            "GHG", "", NA, held.end - held.start + 1, NA, "", a.vintage,
        ])  # fmt: skip
    return rows


def tables(actions: Sequence[ItmoAction], submission: Submission) -> dict[str, list[list[Any]]]:
    """Every table as header + rows, in the template's order."""
    party, year = submission.party, submission.year
    mine = [a for a in actions if a.party == party]
    acts = action_rows(mine, year)
    position = position_at(mine, _year_end(year))
    holds = holding_rows(position)
    submitted = submission.submitted_on or dt.date.today()
    totals: dict[str, int] = {}
    for row in acts:
        key = row[1] + (f" ({row[2]})" if row[2] else "")
        totals[key] = totals.get(key, 0) + int(row[15])
    summary: list[list[Any]] = [
        ["Party", party],
        ["Reported year", year],
        ["Action rows", len(acts)],
        *[[f"Quantity: {k}", v] for k, v in sorted(totals.items())],
        ["Holding rows at 31 December", len(holds)],
        ["Quantity held at 31 December", sum(int(r[12]) for r in holds)],
        ["Corresponding adjustments to add (first transfers in the year)",
         sum(a.quantity for a in mine if a.action_type == ActionType.FIRST_TRANSFER
             and _in_year(a, year))],
        ["Corresponding adjustments to subtract (uses towards the NDC in the year)",
         sum(a.quantity for a in mine if a.action_type == ActionType.USE_NDC
             and _in_year(a, year))],
    ]  # fmt: skip
    return {
        "submission": [
            SUBMISSION,
            [
                party,
                submission.version,
                year,
                submitted.strftime("%d/%m/%Y"),
                "",
                "",
                submission.ndc_first_year,
                submission.ndc_last_year,
                "",
            ],
        ],
        "authorizations": [AUTHORIZATIONS, *authorization_rows(mine, party, year)],
        "actions": [ACTIONS, *acts],
        "holdings": [HOLDINGS, *holds],
        "entities": [ENTITIES],
        "summary": [SUMMARY, *summary],
    }


def _in_year(a: ItmoAction, year: int) -> bool:
    return f"{year:04d}" <= a.occurred_at[:4] <= f"{year:04d}"


#: what a spreadsheet reads as the start of a formula (OWASP, "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    """Text stays text: never a formula, whatever it starts with (registry text such as
    a beneficiary or a letter reference comes from outside); characters XML cannot hold
    are replaced, not allowed to abort the whole export."""
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
    cell.data_type = "s"
    return cell


def write_xlsx(path: Path, data: dict[str, list[list[Any]]]) -> None:

    book = Workbook(write_only=True)
    for name, rows in data.items():
        sheet = book.create_sheet(SHEETS[name])
        for row in rows:
            sheet.append([_xlsx_cell(sheet, v) for v in row])
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


def _csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(directory: Path, data: dict[str, list[list[Any]]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in data.items():
        path = directory / f"{SHEETS[name].replace(' ', '_').replace('.', '')}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([_csv_cell(v) for v in row] for row in rows)
        written.append(path)
    return written
