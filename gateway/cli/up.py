"""``crg up``: the whole system on a laptop, on the embedded default
(:func:`gateway.system.up`).

The local broker and the topics; a Verra signing key; the gateway with HTTP ingest, a
national-registry adapter per Party, the international-registry emulator and adapter;
then the real Verra sample export and a scripted Article 6 story, signed and published,
read back and verified as a downstream party would, followed all the way to ITMO records
and registry calls. A second run resumes from the same data directory: everything is
published again with the same bytes and changes nothing.
"""

from __future__ import annotations

import argparse
import os
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gateway import resources
from gateway.cli.errors import CommandError
from gateway.config import Settings
from gateway.logging import configure_logging
from gateway.system import up


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="run everything on the embedded default (broker, sample feed)")
    p.add_argument("--once", action="store_true", help="exit after the feed instead of waiting")
    p.add_argument("--samples", type=Path, help="folder of registry exports (has verra/)")
    p.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="tansu (memory, the default) or kafka: one Apache Kafka node that keeps its log"
        " under the data directory (fetched by ops/kafka/fetch)",
    )
    p.add_argument(
        "--parties", default="GHA,CHE", help="Parties whose ITMO ledgers to keep (default GHA,CHE)"
    )
    p.set_defaults(handler=cmd_up)


def _samples(explicit: Path | None) -> Traversable:
    """The registry exports to feed: the folder given, else the samples packaged with the
    product (``samples/registry-exports/``)."""
    folder = explicit if explicit is not None else resources.samples()
    if not (folder / "verra" / "transactions.csv").is_file():
        raise CommandError(f"no verra/transactions.csv in {folder}")
    return folder


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    if "CRG_LOG_LEVEL" not in os.environ:  # the summary is the output; logs only for trouble
        configure_logging(settings.log_format, "warning")
    parties = [p.strip().upper() for p in args.parties.split(",") if p.strip()]
    samples = _samples(args.samples)
    return 0 if up(settings, parties, samples, once=args.once, broker=args.broker) else 1
