"""``crg adapter national`` and ``crg itmo``: a Party's ITMO ledger — kept from the
verified topic, queried, digested and exported as the AEF."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

from adapters.national.aef import Submission, tables, write_csv, write_xlsx
from adapters.national.http import (
    FILTERS,
    BadQuery,
    action_json,
    query_from,
)
from gateway.assembly import open_party_store, run_national
from gateway.cli.errors import CommandError
from gateway.cli.running import run_until_signalled
from gateway.config import Settings
from gateway.contract.itmo_identifier import parse
from gateway.contract.parties import is_party_code


def party_code(text: str) -> str:
    code = text.strip().upper()
    if not is_party_code(code):
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 3166-1 alpha-3 Party code")
    return code


def register_adapter(adapter: Any) -> None:
    p = adapter.add_parser("national", help="keep a Party's ITMO ledger from the verified topic")
    p.add_argument("--party", type=party_code, required=True, help="ISO 3166-1 alpha-3, e.g. GHA")
    p.add_argument("--store", help="store URL (default: $CRG_NATIONAL_STORE_URL or SQLite)")
    p.add_argument("--http", action="store_true", help="also serve the ITMO query API")
    p.add_argument("--http-port", type=int, help="default: $CRG_NATIONAL_HTTP_PORT or 8081")
    p.add_argument("--create-topics", action="store_true", help="create missing topics first")
    p.set_defaults(handler=cmd_adapter_national)


def register(sub: Any) -> None:
    itmo = sub.add_parser(
        "itmo", help="a Party's ITMO ledger: list, show, digest, AEF"
    ).add_subparsers(dest="itmo_command", required=True, metavar="WHAT")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--party", type=party_code, required=True)
    common.add_argument("--store", help="store URL (default: $CRG_NATIONAL_STORE_URL or SQLite)")
    p = itmo.add_parser("list", parents=[common], help="ITMO blocks, filtered")
    for name in FILTERS:
        if name != "limit":  # has its default below
            p.add_argument(f"--{name.replace('_', '-')}")
    p.add_argument("--limit", default="100")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.set_defaults(handler=cmd_itmo_list)
    p = itmo.add_parser("show", parents=[common], help="the history of one ITMO")
    p.add_argument("itmo_id", help="e.g. CA0001-GHA01-GHA-1000001-2023")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_itmo_show)
    p = itmo.add_parser("digest", parents=[common], help="deterministic hash of the ledger")
    p.set_defaults(handler=cmd_itmo_digest)
    p = itmo.add_parser("aef", parents=[common], help="export the Agreed Electronic Format")
    p.add_argument("--year", type=int, required=True, help="the reported year")
    p.add_argument("--out", type=Path, required=True, help="file.xlsx, or a folder for CSV files")
    p.add_argument("--ndc-period", default="2021-2030", help="first-last year of the NDC")
    p.add_argument("--version", default="1.0", help="submission version X.Y")
    p.set_defaults(handler=cmd_itmo_aef)


def cmd_adapter_national(args: argparse.Namespace, settings: Settings) -> int:
    return run_until_signalled(
        lambda stop: run_national(
            settings,
            args.party,
            store_url=args.store,
            http=args.http,
            http_port=args.http_port,
            create_topics=args.create_topics,
            stop=stop,
        )
    )


def cmd_itmo_list(args: argparse.Namespace, settings: Settings) -> int:
    params = {key: getattr(args, key) for key in FILTERS if getattr(args, key) is not None}
    try:
        query = query_from(params)
    except BadQuery as exc:
        raise CommandError(str(exc)) from None
    store = open_party_store(settings, args.party, args.store)
    try:
        blocks = store.itmos(query)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()
    if args.json:
        for b in blocks:
            print(json.dumps(dataclasses.asdict(b)))
        return 0
    print(f"{'first ITMO':<32} {'last ITMO':<32} {'quantity':>9}  {'state':<17} holder")
    for b in blocks:
        print(f"{b.first_id:<32} {b.last_id:<32} {b.quantity:>9,}  {b.state:<17} {b.holder_party}")
    print(
        f"{len(blocks)} block(s)"
        + (f"; next page: --after '{blocks[-1].cursor}'" if len(blocks) == query.limit else "")
    )
    return 0


def cmd_itmo_show(args: argparse.Namespace, settings: Settings) -> int:
    try:
        itmo_id = parse(args.itmo_id)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    store = open_party_store(settings, args.party, args.store)
    try:
        history = store.history(itmo_id)
    finally:
        store.close()
    if not history:
        raise CommandError(f"no action of {args.party} on {itmo_id}")
    for a in history:
        if args.json:
            print(json.dumps(action_json(a)))
            continue
        ca = (
            f"  corresponding adjustment: {a.ca_party} {a.ca_sign} for {a.ca_year}"
            if a.ca_party
            else ""
        )
        print(
            f"{a.occurred_at}  {a.action_type.value:<22} {a.first_id} … {a.last_id}"
            f" ({a.quantity:,}){ca}"
        )
    return 0


def cmd_itmo_digest(args: argparse.Namespace, settings: Settings) -> int:
    store = open_party_store(settings, args.party, args.store)
    try:
        counts = store.counts()
        print(
            f"{store.digest()}  {args.party}: {counts['actions']} actions from "
            f"{counts['applied_events']} applied events"
        )
    finally:
        store.close()
    return 0


def cmd_itmo_aef(args: argparse.Namespace, settings: Settings) -> int:
    try:
        first, last = (int(y) for y in args.ndc_period.split("-"))
    except ValueError:
        raise CommandError("--ndc-period must look like 2021-2030") from None
    store = open_party_store(settings, args.party, args.store)
    try:
        data = tables(
            store.actions(),
            Submission(args.party, args.year, args.version, dt.date.today(), first, last),
        )
    finally:
        store.close()
    if args.out.suffix.lower() == ".xlsx":
        write_xlsx(args.out, data)
        written = [args.out]
    else:
        written = write_csv(args.out, data)
    counts = {name: len(rows) - 1 for name, rows in data.items()}
    print(
        f"AEF {args.party} {args.year}: {counts['authorizations']} authorizations, "
        f"{counts['actions']} actions, {counts['holdings']} holdings → "
        + ", ".join(str(p) for p in written)
    )
    return 0
