"""Shared material for the national-registry tests: Ghana's story as events, and applying
events to a store the way the adapter does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from adapters.national.rules import itmo_effect
from adapters.national.store import NationalStore
from gateway.contract.authorization import PartyAuthorization
from gateway.contract.models import RegistryEvent
from tests.factories import envelope
from tests.unit.test_itmo_rules import GHANA_LOA, NDC_ONLY, issue, label, retire, transfer

#: opens a store of the test's backend for a Party: (party, database name) → store
Opener = Callable[[str, str], NationalStore]


def ghana_letter(
    loa: dict[str, Any], first_transfer: str = "USE_OR_CANCELLATION"
) -> PartyAuthorization:
    """Ghana's letter confirming a label of these stories (any of its projects at Verra),
    on the label's terms; where the label says no first transfer, at use or cancellation
    (the stories' units all reach another Party before either)."""
    return PartyAuthorization(
        party="GHA",
        letter_of_authorization=loa["letter_of_authorization"],
        cooperative_approach=loa["cooperative_approach"],
        authorized_uses=loa["authorized_uses"],
        first_transfer_definition=loa.get("first_transfer_definition") or first_transfer,
        registry_id="verra",
        valid_from=dt.date(2026, 1, 1),
        issued_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


#: the letters that confirm every label of the stories
LETTERS = (ghana_letter(GHANA_LOA), ghana_letter(NDC_ONLY))


def events(
    project: str, payloads: list[dict[str, Any]], first_month: int = 1, registry: str = "verra"
) -> list[RegistryEvent]:
    return [
        RegistryEvent.model_validate(
            envelope(
                p,
                event_id=f"{project}-e{i}",
                registry_id=registry,
                sequence=i,
                project_id=project,
                occurred_at=f"2026-{first_month + i:02d}-01T12:00:00Z",
            )
        )
        for i, p in enumerate(payloads, 1)
    ]


STORY = [  # Ghana's story: authorization with first transfer, Switzerland, CORSIA
    issue(1000, 1999, []),
    label("AuthorizationLabelApplied", 1000, 1999, GHANA_LOA),
    transfer(1000, 1399, "ch-buyer", "CHE"),
    retire(
        1400,
        1499,
        "gh-proponent",
        purpose="OIMP",
        oimp_scheme="CORSIA",
        beneficiary="Airline X",
        retired_on="2026-04-02",
    ),
]


def apply_all(store: NationalStore, stream: list[RegistryEvent]) -> int:
    """Apply like the adapter does: skip what the tracking records say was applied."""
    applied = 0
    with store.transaction():
        for e in stream:
            if store.applied(e.registry_id, e.event_id):
                continue
            store.apply(e.registry_id, e.event_id, "test", itmo_effect(e, store, store.numbering))
            applied += 1
    return applied


NDC_FLOW = [
    {**issue(5000, 5499, [NDC_ONLY], vintage="2023"),
     "project": {"project_id": "GH-2", "host_party": "GHA", "methodology": "AMS-II.G"}},
    transfer(5000, 5499, "gh-trader", "GHA"),
    transfer(5000, 5499, "ch-ministry", "CHE", from_account="gh-trader"),
    retire(5000, 5199, "ch-ministry", purpose="NDC_USE", using_party="CHE",
           retired_on="2026-06-30"),
]  # fmt: skip
REVOKED = [
    {**issue(8000, 8099, []),
     "project": {"project_id": "GH-3", "host_party": "GHA", "methodology": "VM0042"}},
    label("AuthorizationLabelApplied", 8000, 8099, NDC_ONLY),
    label("AuthorizationLabelRevoked", 8000, 8099, NDC_ONLY),
    transfer(8000, 8099, "ch-buyer", "CHE"),
]  # fmt: skip
