"""``crg gateway``: verify, check against the ledger, route; optionally HTTP ingest."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.assembly import run_gateway
from gateway.cli.errors import CommandError
from gateway.cli.running import run_until_signalled
from gateway.config import Settings
from gateway.service.members import MembersFailed


def register(sub: Any) -> None:
    p = sub.add_parser("gateway", help="run the gateway (consumer group on the raw topic)")
    p.add_argument("--http", action="store_true", help="also serve HTTP ingest and health")
    p.add_argument("--http-port", type=int, help="default: $CRG_HTTP_PORT or 8080")
    p.add_argument("--create-topics", action="store_true", help="create missing topics first")
    p.add_argument(
        "--processes",
        type=int,
        help="gateway processes on this machine (default: $CRG_GATEWAY_PROCESSES or 1)",
    )
    p.set_defaults(handler=cmd_gateway)


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    if args.processes is not None:
        if args.processes < 1:
            raise CommandError("--processes must be at least 1")
        settings = settings.model_copy(update={"gateway_processes": args.processes})
    try:
        return run_until_signalled(
            lambda stop: run_gateway(
                settings,
                http=args.http,
                http_port=args.http_port,
                create_topics=args.create_topics,
                stop=stop,
            )
        )
    except MembersFailed as exc:
        raise CommandError(str(exc)) from None
