"""``crg publish``: sign events from JSON lines or a registry export and send them to Kafka.

Exit status: 0 all sent; 3 some records invalid (reported, the rest sent);
1 some sends failed (safe to re-run: the journal keeps each event's sequence).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from gateway.assembly import choose_signer, publish_items
from gateway.cli.keys import registry_id
from gateway.config import Settings
from gateway.publishing.publisher import PublishReport
from gateway.publishing.sources import SourceItem
from gateway.publishing.sources.jsonl import read_jsonl
from gateway.publishing.sources.verra import read_verra

FORMATS = {"jsonl": read_jsonl, "verra": read_verra}


def register(sub: Any) -> None:
    p = sub.add_parser("publish", help="sign and send events (JSON lines or a registry export)")
    p.add_argument("input", help="file to read, or - for standard input")
    p.add_argument("--format", choices=sorted(FORMATS), default="jsonl")
    p.add_argument(
        "--registry",
        required=True,
        type=registry_id,
        help="registry id the events are published as",
    )
    p.add_argument("--key-id", help="signing key (default: the registry's active key on disk)")
    p.add_argument("--topic", help="default: the raw events topic")
    p.add_argument(
        "--resend",
        action="store_true",
        help="send again events already acked (same sequence, same bytes)",
    )
    p.add_argument(
        "--stop-on-error",
        action="store_true",
        help="stop at the first invalid record instead of reporting and skipping it",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    p.add_argument("--create-topics", action="store_true", help="create missing topics first")
    p.set_defaults(handler=cmd_publish)


@contextmanager
def open_input(name: str) -> Iterator[TextIO]:
    if name == "-":
        yield sys.stdin
        return
    with open(name, encoding="utf-8-sig", newline="") as stream:
        yield stream


def print_report(report: PublishReport, *, records_read: int | None = None) -> None:
    if records_read is not None:
        print(f"records read: {records_read}")
    for line in report.lines():
        print(line)


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    signer = choose_signer(settings, args.registry, args.key_id)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    reader = FORMATS[args.format]
    with open_input(args.input) as stream:
        items: list[SourceItem] = list(reader(stream))
    report = asyncio.run(
        publish_items(
            settings,
            signer,
            args.registry,
            items,
            topic=args.topic,
            resend=args.resend,
            stop_on_error=args.stop_on_error,
            progress=progress,
            create_topics=args.create_topics,
        )
    )
    print_report(report)
    if report.failed:
        return 1
    return 3 if report.invalid else 0
