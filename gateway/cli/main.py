"""``crg``: the command line of the Carbon Registry Gateway."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.assembly import SetupError
from gateway.cli import (
    authorize,
    broker,
    international,
    keys,
    national,
    publish,
    reconcile,
    rejected,
    replay,
    up,
    verify,
)
from gateway.cli import gateway as gateway_cmd
from gateway.cli.errors import CommandError
from gateway.config import Settings
from gateway.logging import configure_logging
from gateway.streaming.access import AccessError, KafkaAccessRefused

# Optional: the tooling (benchmarks, chaos) is the checkout's ops/ package, not in the wheel.
try:
    from ops import cli as tooling
except ImportError:
    tooling = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crg", description="Carbon Registry Gateway: signed registry events on Kafka."
    )
    parser.add_argument("--data-dir", help="data directory (default: $CRG_DATA_DIR or ./data)")
    parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (up, gateway_cmd):
        module.register(sub)
    adapter = sub.add_parser("adapter", help="run an adapter").add_subparsers(
        dest="adapter_command", required=True, metavar="ADAPTER"
    )
    national.register_adapter(adapter)
    international.register_adapter(adapter)
    for module in (
        national,
        international,
        replay,
        reconcile,
        broker,
        keys,
        publish,
        rejected,
        verify,
        authorize,
    ):
        module.register(sub)
    if tooling is not None:
        tooling.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.bootstrap_servers:
        overrides["bootstrap_servers"] = args.bootstrap_servers
    settings = Settings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    try:
        return int(args.handler(args, settings) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CommandError, SetupError, AccessError, KafkaAccessRefused) as exc:
        print(f"crg: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
