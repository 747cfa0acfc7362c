"""Deterministic, realistic event streams for load, crash and fuzz runs: issuances, part
transfers, Article 6 labels, retirements, double retirements and cancellations, some of
which the ledger must refuse."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

from .contract.message import EventSigner, SignedMessage
from .contract.models import RegistryEvent

BLOCK = 1_000
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def mixed_stream(
    signers: Mapping[str, EventSigner], n: int, seed: int = 7, projects: int = 100
) -> list[SignedMessage]:
    """``n`` signed events over ``projects`` projects of each registry in ``signers``."""
    rng = random.Random(seed)
    sequence = dict.fromkeys(signers, 0)
    out: list[SignedMessage] = []

    def emit(registry: str, project: str, payload: dict[str, Any]) -> None:
        sequence[registry] += 1
        s = sequence[registry]
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
        out.append(signers[registry].sign_event(event))

    catalogue = [(r, f"P{p}", p * BLOCK) for r in sorted(signers) for p in range(projects)]
    for registry, project, base in catalogue:
        emit(
            registry,
            project,
            {
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
                "serial_block": {
                    "serial": f"{registry}-{base}",
                    "start": base,
                    "end": base + BLOCK - 1,
                },
                "account": "proponent",
            },
        )
    while len(out) < n:
        registry, project, base = rng.choice(catalogue)
        start = base + rng.randrange(BLOCK - 50)
        end = start + rng.randrange(1, 50) - 1
        common = {
            "serial_block": {"serial": f"{registry}-{start}-{end}", "start": start, "end": end},
            "quantity": end - start + 1,
        }
        roll = rng.random()
        if roll < 0.45:
            emit(
                registry,
                project,
                {
                    "type": "UnitsTransferred",
                    **common,
                    "from_account": "proponent",
                    "to_account": "buyer",
                    "to_party": "CHE",
                },
            )
        elif roll < 0.75:
            emit(
                registry,
                project,
                {
                    "type": "UnitsRetired",
                    **common,
                    "account": rng.choice(["proponent", "buyer"]),
                    "purpose": "OIMP",
                    "oimp_scheme": "CORSIA",
                    "retired_on": "2026-03-01",
                },
            )
        elif roll < 0.9:
            emit(
                registry,
                project,
                {
                    "type": "AuthorizationLabelApplied",
                    **common,
                    "label": {
                        "kind": "ARTICLE6_AUTHORIZATION",
                        "text": "A6",
                        "host_party": "GHA",
                        "authorized_uses": [{"purpose": "NDC"}],
                        "first_transfer_definition": "AUTHORIZATION",
                        "cooperative_approach": "CA0001",
                    },
                },
            )
        else:
            emit(
                registry,
                project,
                {
                    "type": "UnitsCancelled",
                    **common,
                    "account": "proponent",
                    "purpose": "OMGE",
                    "cancelled_on": "2026-03-02",
                },
            )
    return out
