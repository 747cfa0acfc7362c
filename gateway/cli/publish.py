"""``crg publish``: sign events from JSON lines or a registry export and send them to Kafka.

Exit status: 0 all sent; 3 some records invalid (reported, the rest sent);
1 some sends failed (safe to re-run: the journal keeps each event's sequence).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from gateway.cli.errors import CommandError
from gateway.config import Settings
from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import KeyUnknown
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner
from gateway.contract.schemas import registry_event_versions
from gateway.keystore import open_key_storage
from gateway.keystore.private import load_private_key, private_key_path
from gateway.publishing.journal import PublishJournal
from gateway.publishing.publisher import Publisher, PublishReport, make_producer
from gateway.publishing.sources import SourceItem
from gateway.publishing.sources.jsonl import read_jsonl
from gateway.publishing.sources.verra import read_verra
from gateway.streaming.topics import Topics, ensure_topics

FORMATS = {"jsonl": read_jsonl, "verra": read_verra}


def register(sub: Any) -> None:
    p = sub.add_parser("publish", help="sign and send events (JSON lines or a registry export)")
    p.add_argument("input", help="file to read, or - for standard input")
    p.add_argument("--format", choices=sorted(FORMATS), default="jsonl")
    p.add_argument("--registry", required=True, help="registry id the events are published as")
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


def active_signing_key(settings: Settings, registry: str, ring: KeyRing) -> str | None:
    """The newest key of ``registry`` that is active now and whose private key is on disk."""
    now = dt.datetime.now(dt.UTC)
    key_dir = settings.resolved_private_key_dir
    for record in reversed(ring.for_registry(registry)):
        if record.is_active(now) and private_key_path(key_dir, record.key_id).exists():
            return record.key_id
    return None


def choose_signer(settings: Settings, registry: str, key_id: str | None) -> EventSigner:
    ring = open_key_storage(settings.resolved_keys_url).load()
    key_dir = settings.resolved_private_key_dir
    if key_id is None:
        key_id = active_signing_key(settings, registry, ring)
        if key_id is None:
            raise CommandError(
                f"no active key of registry {registry!r} with a private key in {key_dir}; "
                f"run: crg keys generate --registry {registry} --register"
            )
    try:
        record = ring.get(key_id)
    except KeyUnknown as exc:
        raise CommandError(str(exc)) from None
    if record.registry_id != registry:
        raise CommandError(f"key {key_id} belongs to registry {record.registry_id!r}")
    path = private_key_path(key_dir, key_id)
    if not path.exists():
        raise CommandError(f"no private key file {path}")
    codec = SingleObjectCodec(registry_event_versions(), max_size=settings.max_message_bytes)
    return EventSigner(codec, key_id, load_private_key(path))


@contextmanager
def open_input(name: str) -> Iterator[TextIO]:
    if name == "-":
        yield sys.stdin
        return
    with open(name, encoding="utf-8-sig", newline="") as stream:
        yield stream


def journal_path(settings: Settings) -> Path:
    return settings.data_dir / "publisher" / "journal.sqlite"


async def publish_items(
    settings: Settings,
    signer: EventSigner,
    registry: str,
    items: Any,
    *,
    topic: str | None = None,
    resend: bool = False,
    stop_on_error: bool = False,
    progress: bool = False,
    create_topics: bool = False,
) -> PublishReport:
    topics = Topics(settings.topic_prefix)
    if create_topics:
        await ensure_topics(
            settings.bootstrap_servers, topics.all(), settings.partitions, settings.replication
        )
    journal = PublishJournal(journal_path(settings))
    producer = make_producer(settings.bootstrap_servers, idempotence=settings.kafka_idempotence)
    await producer.start()
    try:
        publisher = Publisher(
            signer,
            registry,
            journal,
            producer,
            topic or topics.raw,
            resend=resend,
            stop_on_error=stop_on_error,
        )
        return await publisher.publish(items, progress=progress)
    finally:
        await producer.stop()
        journal.close()


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
