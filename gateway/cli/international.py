"""``crg adapter international`` and ``crg emulator international``: ITMO actions to the
international registry's interface, and an emulator of that interface."""

from __future__ import annotations

import argparse
from typing import Any

from adapters.international.emulator import Emulator, Faults
from gateway.assembly import run_international, serve_emulator
from gateway.cli.running import run_until_signalled
from gateway.config import Settings


def register_adapter(adapter: Any) -> None:
    p = adapter.add_parser("international", help="ITMO actions → international registry calls")
    p.add_argument("--registry-url", help="default: $CRG_INTERNATIONAL_REGISTRY_URL")
    p.add_argument("--store", help="store URL (default: $CRG_INTERNATIONAL_STORE_URL or SQLite)")
    p.add_argument("--create-topics", action="store_true", help="create missing topics first")
    p.set_defaults(handler=cmd_adapter_international)


def register(sub: Any) -> None:
    emulator = sub.add_parser("emulator", help="emulators of external interfaces").add_subparsers(
        dest="emulator_command", required=True, metavar="WHAT"
    )
    p = emulator.add_parser("international", help="serve an international-registry emulator")
    p.add_argument("--port", type=int, help="default: $CRG_EMULATOR_PORT or 8090")
    p.add_argument("--error-rate", type=float, default=0.0, help="503/429 before anything")
    p.add_argument("--reset-rate", type=float, default=0.0, help="connections dropped at once")
    p.add_argument(
        "--drop-after-commit-rate", type=float, default=0.0, help="applied, then the answer is lost"
    )
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_emulator_international)


def cmd_adapter_international(args: argparse.Namespace, settings: Settings) -> int:
    return run_until_signalled(
        lambda stop: run_international(
            settings,
            registry_url=args.registry_url,
            store_url=args.store,
            create_topics=args.create_topics,
            stop=stop,
        )
    )


def cmd_emulator_international(args: argparse.Namespace, settings: Settings) -> int:
    token = settings.international_registry_token
    emulator = Emulator(
        token=token.get_secret_value() if token else None,
        faults=Faults(
            args.error_rate,
            args.reset_rate,
            args.drop_after_commit_rate,
            args.latency_ms,
            args.seed,
        ),
    )
    port = settings.emulator_port if args.port is None else args.port
    return run_until_signalled(
        lambda stop: serve_emulator(emulator, settings.http_host, port, stop)
    )
