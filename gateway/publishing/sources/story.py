"""A scripted Article 6 story for ``crg up``: a Ghanaian cookstove project in Verra's
registry whose units Ghana authorizes (first transfer at authorization), part of which
go to an account under Switzerland's jurisdiction and are used towards Switzerland's NDC,
part of which an airline retires for CORSIA. Serial numbers sit far above the real
sample's, so the two feeds never touch. Deterministic: the same drafts every run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.contract.authorization import PartyAuthorization
from gateway.publishing.sources import Draft

PROJECT = "GH-DEMO-1"
START = 990_000_000_000
SIZE = 10_000
LABEL: dict[str, Any] = {
    "kind": "ARTICLE6_AUTHORIZATION",
    "text": "Article 6 Authorized – Intl mitigation purposes",
    "host_party": "GHA",
    "letter_of_authorization": "GHA-LoA-2026-001",
    "authorized_uses": [{"purpose": "NDC"}, {"purpose": "OIMP", "oimp_scheme": "CORSIA"}],
    "first_transfer_definition": "AUTHORIZATION",
    "cooperative_approach": "CA0007",
}


def story_letter(registry: str = "verra") -> PartyAuthorization:
    """Ghana's letter of authorization that confirms the story's label: the project, its
    2025 vintage, the uses and first-transfer definition the label states."""
    return PartyAuthorization(
        party="GHA",
        letter_of_authorization=LABEL["letter_of_authorization"],
        cooperative_approach=LABEL["cooperative_approach"],
        authorized_uses=LABEL["authorized_uses"],
        first_transfer_definition=LABEL["first_transfer_definition"],
        registry_id=registry,
        project_ids=(PROJECT,),
        vintage_first=2025,
        vintage_last=2025,
        valid_from=dt.date(2026, 1, 1),
        issued_at=dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC),
    )


def _block(start: int, end: int) -> dict[str, Any]:
    return {"serial": f"DEMO-{PROJECT}-{start}-{end}", "start": start, "end": end}


def article6_story(registry: str = "verra") -> list[Draft]:
    a, b, c = START, START + 3_999, START + 4_999  # CHE gets a..b, CORSIA b+1..c
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "issuance",
            {
                "type": "UnitsIssued",
                "project": {
                    "project_id": PROJECT,
                    "name": "Ghana Clean Cooking (demo)",
                    "host_party": "GHA",
                    "methodology": "VMR0006",
                    "sector": "Energy demand",
                },
                "vintage_start": "2025-01-01",
                "vintage_end": "2025-12-31",
                "unit_type": "VCU",
                "serial_block": _block(START, START + SIZE - 1),
                "quantity": SIZE,
                "account": "gh-demo/proponent",
                "account_party": "GHA",
            },
        ),
        (
            "authorization",
            {
                "type": "AuthorizationLabelApplied",
                "serial_block": _block(START, START + SIZE - 1),
                "quantity": SIZE,
                "label": LABEL,
            },
        ),
        (
            "transfer to Switzerland",
            {
                "type": "UnitsTransferred",
                "serial_block": _block(a, b),
                "quantity": b - a + 1,
                "from_account": "gh-demo/proponent",
                "to_account": "ch/foen-ndc",
                "from_party": "GHA",
                "to_party": "CHE",
            },
        ),
        (
            "use towards Switzerland's NDC",
            {
                "type": "UnitsRetired",
                "serial_block": _block(a, a + 2_499),
                "quantity": 2_500,
                "account": "ch/foen-ndc",
                "purpose": "NDC_USE",
                "using_party": "CHE",
                "beneficiary": "Swiss Confederation",
                "retired_on": "2026-06-30",
            },
        ),
        (
            "CORSIA retirement",
            {
                "type": "UnitsRetired",
                "serial_block": _block(b + 1, c),
                "quantity": c - b,
                "account": "gh-demo/proponent",
                "purpose": "OIMP",
                "oimp_scheme": "CORSIA",
                "beneficiary": "Demo Airline",
                "retired_on": "2026-07-15",
            },
        ),
    ]
    return [
        Draft(
            f"story step {n}: {what}",
            {
                "event_id": f"demo-{PROJECT}-{n}",
                "registry_id": registry,
                "project_id": PROJECT,
                "occurred_at": f"2026-0{n + 1}-15T09:00:00Z",
                "payload": payload,
            },
            (what,),
        )
        for n, (what, payload) in enumerate(steps, 1)
    ]
