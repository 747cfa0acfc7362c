"""Deterministic event streams for load, crash and fuzz runs: issuances, part transfers,
Article 6 labels, retirements and cancellations.

- :func:`registry_stream` is what a registry sends: it keeps track of which account holds
  which active units, so nearly every event is one the ledger accepts, with a set share of
  mistakes (double retirements, transfers from an account that does not hold the units);
- :func:`mixed_stream` is hostile: operations on random ranges, about two in three of which
  the ledger must refuse (units not held, mixed states, double use) — for crash and
  fuzz runs, which must show the refusals too.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.contract.authorization import PartyAuthorization
from gateway.contract.message import EventSigner, SignedMessage
from gateway.contract.models import RegistryEvent

BLOCK = 1_000
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class _Emitter:
    """Numbers, signs and collects the events of each registry in order."""

    def __init__(self, signers: Mapping[str, EventSigner]) -> None:
        self.signers = signers
        self.sequence = dict.fromkeys(signers, 0)
        self.out: list[SignedMessage] = []

    def __call__(self, registry: str, project: str, payload: dict[str, Any]) -> None:
        self.sequence[registry] += 1
        s = self.sequence[registry]
        event = RegistryEvent.model_validate(
            {
                "event_id": f"{registry}-{s}",
                "registry_id": registry,
                "project_id": project,
                "sequence": s,
                "occurred_at": T0 + dt.timedelta(seconds=s),
                "payload": payload,
            }
        )
        self.out.append(self.signers[registry].sign_event(event))


def mixed_stream(
    signers: Mapping[str, EventSigner], n: int, seed: int = 7, projects: int = 100
) -> list[SignedMessage]:
    """``n`` signed events over ``projects`` projects of each registry in ``signers``:
    one issuance each, then operations on random ranges of its units."""
    rng = random.Random(seed)
    emit = _Emitter(signers)
    catalogue = [(r, f"P{p}", p * BLOCK) for r in sorted(signers) for p in range(projects)]
    for registry, project, base in catalogue:
        emit(registry, project, _issuance(registry, project, base))
    while len(emit.out) < n:
        registry, project, base = rng.choice(catalogue)
        start = base + rng.randrange(BLOCK - 50)
        end = start + rng.randrange(1, 50) - 1
        roll = rng.random()
        if roll < 0.45:
            payload = _transfer(start, end, "proponent", registry)
        elif roll < 0.75:
            account = rng.choice(["proponent", "buyer"])
            payload = _retirement(start, end, account, registry)
        elif roll < 0.9:
            payload = _label(start, end, registry)
        else:
            payload = _cancellation(start, end, "proponent", registry)
        emit(registry, project, payload)
    return emit.out


def _piece(rng: random.Random, ranges: list[list[int]]) -> tuple[int, int]:
    """Take 1–49 units off the front of one of ``ranges`` (dropped once empty)."""
    i = rng.randrange(len(ranges))
    first, last = ranges[i]
    end = min(first + rng.randrange(1, 50) - 1, last)
    if end == last:
        ranges[i] = ranges[-1]
        ranges.pop()
    else:
        ranges[i][0] = end + 1
    return first, end


def registry_stream(
    signers: Mapping[str, EventSigner],
    n: int,
    seed: int = 7,
    projects: int = 100,
    mistakes: float = 0.02,
) -> list[SignedMessage]:
    """``n`` signed events as registries send them: each project's units issued in blocks
    of :data:`BLOCK` to its proponent, then parts transferred to a buyer, labelled for
    Article 6, retired or cancelled by whoever holds them; a project whose units are all
    used gets a new issuance. About ``mistakes`` of the events are ones the ledger must
    refuse: a retirement of units already retired (double use) or a transfer from an
    account that does not hold the units."""
    rng = random.Random(seed)
    emit = _Emitter(signers)
    next_serial = dict.fromkeys(signers, 0)
    # per (registry, project): active unit ranges by holding account, and retired ranges
    held: dict[tuple[str, str], dict[str, list[list[int]]]] = {}
    retired: dict[tuple[str, str], list[tuple[int, int]]] = {}

    def issue(registry: str, project: str) -> None:
        base = next_serial[registry]
        next_serial[registry] += BLOCK
        emit(registry, project, _issuance(registry, project, base))
        held[registry, project] = {"proponent": [[base, base + BLOCK - 1]], "buyer": []}
        retired.setdefault((registry, project), [])

    catalogue = [(r, f"P{p}") for r in sorted(signers) for p in range(projects)]
    for registry, project in catalogue:
        issue(registry, project)
    while len(emit.out) < n:
        registry, project = rng.choice(catalogue)
        accounts = held[registry, project]
        if not accounts["proponent"] and not accounts["buyer"]:
            issue(registry, project)
            continue
        roll = rng.random()
        if roll < mistakes / 2 and retired[registry, project]:  # a mistake: double use
            start, end = rng.choice(retired[registry, project])
            emit(registry, project, _retirement(start, end, "buyer", registry))
            continue
        holder = "proponent" if accounts["proponent"] else "buyer"
        if roll < 0.45 and accounts["proponent"]:
            start, end = _piece(rng, accounts["proponent"])
            if roll < mistakes:  # a mistake: the trader does not hold these units
                accounts["proponent"].append([start, end])
                emit(registry, project, _transfer(start, end, "trader", registry))
            else:
                accounts["buyer"].append([start, end])
                emit(registry, project, _transfer(start, end, "proponent", registry))
        elif roll < 0.6:
            first, last = rng.choice(accounts[holder])
            end = min(first + rng.randrange(1, 50) - 1, last)
            emit(registry, project, _label(first, end, registry))  # labels move nothing
        elif roll < 0.92:
            if accounts["buyer"]:
                holder = "buyer"
            start, end = _piece(rng, accounts[holder])
            retired[registry, project].append((start, end))
            emit(registry, project, _retirement(start, end, holder, registry))
        else:
            start, end = _piece(rng, accounts[holder])
            emit(registry, project, _cancellation(start, end, holder, registry))
    return emit.out


def _serial(registry: str, start: int, end: int) -> dict[str, Any]:
    return {
        "serial_block": {"serial": f"{registry}-{start}-{end}", "start": start, "end": end},
        "quantity": end - start + 1,
    }


def _issuance(registry: str, project: str, base: int) -> dict[str, Any]:
    return {
        "type": "UnitsIssued",
        "unit_type": "VCU",
        "quantity": BLOCK,
        "project": {
            "project_id": project,
            "name": f"{registry} project {project}",
            "host_party": "GHA",
            "methodology": "VM0042",
        },
        "vintage_start": "2024-01-01",
        "vintage_end": "2024-12-31",
        "serial_block": {"serial": f"{registry}-{base}", "start": base, "end": base + BLOCK - 1},
        "account": "proponent",
    }


def _transfer(start: int, end: int, sender: str, registry: str) -> dict[str, Any]:
    return {
        "type": "UnitsTransferred",
        **_serial(registry, start, end),
        "from_account": sender,
        "to_account": "buyer",
        "to_party": "CHE",
    }


def _retirement(start: int, end: int, account: str, registry: str) -> dict[str, Any]:
    return {
        "type": "UnitsRetired",
        **_serial(registry, start, end),
        "account": account,
        "purpose": "OIMP",
        "oimp_scheme": "CORSIA",
        "retired_on": "2026-03-01",
    }


def generated_letters(registries: Iterable[str]) -> list[PartyAuthorization]:
    """Ghana's letters that confirm the generated labels (which name no letter): one per
    registry, any of its Ghanaian projects, on the labels' terms."""
    return [
        PartyAuthorization(
            party="GHA",
            letter_of_authorization=f"GHA-LoA-generated-{registry}",
            cooperative_approach="CA0001",
            authorized_uses=({"purpose": "NDC"},),  # type: ignore[arg-type]
            first_transfer_definition="AUTHORIZATION",  # type: ignore[arg-type]
            registry_id=registry,
            valid_from=dt.date(2000, 1, 1),
            issued_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),  # keys made here: 10 years back
        )
        for registry in sorted(set(registries))
    ]


def _label(start: int, end: int, registry: str) -> dict[str, Any]:
    return {
        "type": "AuthorizationLabelApplied",
        **_serial(registry, start, end),
        "label": {
            "kind": "ARTICLE6_AUTHORIZATION",
            "text": "A6",
            "host_party": "GHA",
            "authorized_uses": [{"purpose": "NDC"}],
            "first_transfer_definition": "AUTHORIZATION",
            "cooperative_approach": "CA0001",
        },
    }


def _cancellation(start: int, end: int, account: str, registry: str) -> dict[str, Any]:
    return {
        "type": "UnitsCancelled",
        **_serial(registry, start, end),
        "account": account,
        "purpose": "OMGE",
        "cancelled_on": "2026-03-02",
    }
