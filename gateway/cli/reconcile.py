"""``crg reconcile``: the gateway's ledger against a registry export and against a
Party's ITMO ledger; prints every difference, exits 1 if there is any."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adapters.national.store import Query
from gateway.assembly import open_gateway_ledger, open_party_store
from gateway.cli.errors import CommandError
from gateway.config import Settings
from gateway.contract.models import RegistryEvent
from gateway.publishing.sources import Draft
from gateway.publishing.sources.verra import read_verra
from gateway.reconcile import (
    Difference,
    compare_totals,
    export_blocks,
    export_totals,
    itmo_blocks,
    ledger_totals,
)


def register(sub: Any) -> None:
    p = sub.add_parser("reconcile", help="compare the ledger with an export and ITMO ledgers")
    p.add_argument("--ledger", help="ledger URL (default: the configured one)")
    p.add_argument("--export", type=Path, help="a registry export file (Verra CSV)")
    p.add_argument("--party", action="append", default=[], help="a Party's ITMO ledger (repeat)")
    p.set_defaults(handler=cmd_reconcile)


def export_events(path: Path) -> list[RegistryEvent]:

    with path.open(encoding="utf-8-sig", newline="") as stream:
        drafts = [i for i in read_verra(stream) if isinstance(i, Draft)]
    return [
        RegistryEvent.model_validate({**d.fields, "sequence": n, "registry_id": "verra"})
        for n, d in enumerate(drafts, 1)
    ]


def _show(title: str, differences: list[Difference]) -> None:
    print(f"{title}: " + ("no difference" if not differences else f"{len(differences)} differ"))
    for d in differences:
        print(f"  {d.where}: ledger {d.ledger} | other {d.other}")


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    if not args.export and not args.party:
        raise CommandError("give --export FILE and/or --party GHA")
    ledger = open_gateway_ledger(settings, args.ledger)
    try:
        blocks = ledger.blocks()
    finally:
        ledger.close()
    found = 0
    if args.export:
        if not args.export.exists():
            raise CommandError(f"no such file: {args.export}")
        events = export_events(args.export)
        registries = {e.registry_id for e in events}
        mine = [b for b in blocks if b.registry_id in registries]
        totals = compare_totals(ledger_totals(mine), export_totals(events))
        _show(f"totals per registry / project / vintage against {args.export.name}", totals)
        differing = export_blocks(mine, events)
        _show("serial blocks of the export", differing)
        found += len(totals) + len(differing)
    for party in args.party:
        store = open_party_store(settings, party.upper())
        try:
            itmos = [
                (b.registry_id, b.series, b.unit_first, b.unit_last, b.state)
                for b in store.itmos(_all())
            ]
        finally:
            store.close()
        differing = itmo_blocks(blocks, itmos)
        _show(f"ITMO blocks of {party.upper()} against the ledger ({len(itmos)} blocks)", differing)
        found += len(differing)
    print("reconciled" if not found else f"{found} difference(s)")
    return 0 if not found else 1


def _all() -> Any:

    return Query(limit=10**9)
