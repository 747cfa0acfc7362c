"""``crg up``: the whole system on a laptop, on the embedded default.

The local broker and the topics; a Verra signing key; the gateway with HTTP ingest, a
national-registry adapter per Party, the international-registry emulator and adapter
(:mod:`.system`); then the real Verra sample export and a scripted Article 6 story,
signed and published, read back and verified as a downstream party would, followed all
the way to ITMO records and registry calls. A second run resumes from the same data
directory: everything is published again with the same bytes and changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gateway import resources
from gateway.cli.errors import CommandError
from gateway.cli.publish import active_signing_key, choose_signer, print_report, publish_items
from gateway.collector import settle_collector
from gateway.config import Settings
from gateway.contract.codec import default_codec
from gateway.contract.models import LabelKind, UnitsIssued
from gateway.keystore import open_key_storage
from gateway.keystore.private import generate, private_key_path, write_private_key
from gateway.logging import configure_logging
from gateway.publishing.reader import read_and_verify
from gateway.publishing.sources import Draft
from gateway.publishing.sources.story import article6_story
from gateway.publishing.sources.verra import read_verra
from gateway.streaming.local_broker import LocalBroker
from gateway.streaming.topics import Topics, ensure_topics
from gateway.system import System, baseline, forget_positions, summary, wait_until_through


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="run everything on the embedded default (broker, sample feed)")
    p.add_argument("--once", action="store_true", help="exit after the feed instead of waiting")
    p.add_argument("--samples", type=Path, help="folder of registry exports (has verra/)")
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


def ensure_registry_key(settings: Settings, registry: str) -> str:
    storage = open_key_storage(settings.resolved_keys_url)
    existing = active_signing_key(settings, registry, storage.load())
    if existing is not None:
        return existing
    now = dt.datetime.now(dt.UTC)
    private, record = generate(registry, now.replace(microsecond=0) - dt.timedelta(days=3650))
    write_private_key(private_key_path(settings.resolved_private_key_dir, record.key_id), private)
    storage.save([record])
    return record.key_id


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:

    if "CRG_LOG_LEVEL" not in os.environ:  # the summary is the output; logs only for trouble
        configure_logging(settings.log_format, "warning")
    samples = _samples(args.samples)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with LocalBroker(log_path=settings.data_dir / "broker.log") as broker:
        settings = settings.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
        topics = Topics(settings.topic_prefix)
        asyncio.run(ensure_topics(broker.bootstrap_servers, topics.all(), settings.partitions))
        print(f"broker: {broker.bootstrap_servers} (tansu, memory storage, pid {broker.pid})")
        print(f"topics: {', '.join(topics.all())}")

        key_id = ensure_registry_key(settings, "verra")
        print(f"registry key: verra / {key_id} (trust store {settings.resolved_keys_url})")
        signer = choose_signer(settings, "verra", key_id)

        export = samples / "verra" / "transactions.csv"
        with export.open(encoding="utf-8-sig", newline="") as stream:
            items = list(read_verra(stream))
        rows = sum(
            len(i.records)
            for i in items
            if isinstance(i, Draft) and i.fields["payload"]["type"] == "UnitsIssued"
        )
        print(f"\nfeed: {export}\n  {rows} export rows → {len(items)} events")
        story = article6_story("verra")
        print(
            f"story: {len(story)} Article 6 events on project {story[0].fields['project_id']}"
            " (authorization, first transfer, transfer to Switzerland, NDC use, CORSIA)"
        )
        parties = [p.strip().upper() for p in args.parties.split(",") if p.strip()]
        forget_positions(settings, parties)
        # The embedded broker keeps nothing across runs: send everything again; the
        # journal gives each event its old sequence, so the bytes are identical.
        report = asyncio.run(
            publish_items(settings, signer, "verra", [*items, *story[:3]], resend=True)
        )
        print_report(report)

        keys = open_key_storage(settings.resolved_keys_url).load()
        tally = asyncio.run(
            read_and_verify(
                broker.bootstrap_servers,
                topics.raw,
                keys,
                default_codec(),
                expected=report.total_sent,
                wait_seconds=30,
            )
        )
        print(
            f"\nread back from {topics.raw}: {tally.total} messages over "
            f"{len(tally.partitions)} partitions, verified as any downstream party would: "
            + ", ".join(f"{k} {v}" for k, v in sorted(tally.verified.items()))
        )
        article6 = [
            e.payload
            for e in tally.events
            if isinstance(e.payload, UnitsIssued)
            and any(lbl.kind == LabelKind.ARTICLE6_AUTHORIZATION for lbl in e.payload.labels)
        ]
        for issued in article6[:1]:
            print(
                f"\nan Article 6 authorized issuance, project {issued.project.project_id} "
                f"{issued.project.name!r}, host Party {issued.project.host_party}:"
            )
            print(f"  {issued.quantity} units, serial {issued.serial_block.serial}")
            for lbl in issued.labels:
                print(f"  label {lbl.kind}: {lbl.text}")

        settle_collector()  # from here on it runs like the long-lived services
        outcome = asyncio.run(
            follow(settings, parties, story[3:], report.total_sent, signer, once=args.once)
        )
        ok = (
            tally.total == report.total_sent
            and not tally.rejected
            and not report.failed
            and outcome
        )
        print(
            "\nresult: "
            + (
                "every published event verified end to end, judged by the gateway and "
                "followed to the ITMO ledgers and the international registry"
                if ok
                else "MISMATCH between published, verified and followed events"
            )
        )
    return 0 if ok else 1


async def follow(
    settings: Settings,
    parties: list[str],
    later: list[Draft],
    published: int,
    signer: Any,
    *,
    once: bool,
) -> bool:
    """Run the system until everything published went all the way; then publish the
    rest of the story (a use after the transfer it needs) and follow it too."""

    system = System(settings, parties)
    since = baseline(settings, parties)
    await system.start()
    try:
        print("\nthe system (all on 127.0.0.1):")
        for line in system.urls():
            print(f"  {line}")
        progress = await wait_until_through(settings, parties, published, since, check=system.check)
        report = await publish_items(settings, signer, "verra", later, resend=True)
        print(f"\nstory, later steps (the use after the transfer): sent {report.total_sent}")
        progress = await wait_until_through(
            settings, parties, published + report.total_sent, since, check=system.check
        )
        print("\nthrough: " + ", ".join(f"{k} {v}" for k, v in progress.items()))
        for line in summary(system):
            print(line)
        if not once:
            print("\neverything keeps running; Ctrl-C stops it")
            loop = asyncio.get_running_loop()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, system.stop.set)
            await system.stop.wait()
        return True
    finally:
        await system.close()
