"""``crg up``: the whole system on a laptop, on the embedded default.

Today "the whole system" is the event contract end to end: the local broker, the
gateway's topics, a registry key, the real Verra sample export signed and published,
and every message read back and verified as a downstream party would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from ..broker.local import LocalBroker, free_port
from ..broker.topics import Topics, ensure_topics
from ..config import Settings
from ..contract.codec import default_codec
from ..contract.models import LabelKind, UnitsIssued
from ..keystore import open_key_storage
from ..keystore.private import generate, private_key_path, write_private_key
from ..reader import read_and_verify
from ..sources import Draft
from ..sources.verra import read_verra
from .publish import active_signing_key, choose_signer, print_report, publish_items

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIRS = (
    REPO / "samples" / "registry-exports",
    REPO.parent / "shared" / "data" / "registry-samples",
)


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="run everything on the embedded default (broker, sample feed)")
    p.add_argument("--once", action="store_true", help="exit after the feed instead of waiting")
    p.add_argument("--samples", type=Path, help="folder of registry exports (has verra/)")
    p.set_defaults(handler=cmd_up)


def _samples(explicit: Path | None) -> Path:
    for folder in (explicit,) if explicit else SAMPLE_DIRS:
        if (folder / "verra" / "transactions.csv").exists():
            return folder
    raise FileNotFoundError(
        "no registry samples found (looked in: " + ", ".join(str(d) for d in SAMPLE_DIRS) + ")"
    )


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
    import os

    from ..logging import configure_logging

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
        # The embedded broker keeps nothing across runs: send everything again; the
        # journal gives each event its old sequence, so the bytes are identical.
        report = asyncio.run(publish_items(settings, signer, "verra", items, resend=True))
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

        # The embedded broker keeps nothing across runs, so each run's gateway ledger
        # starts empty too (kept under runs/ for inspection).
        run_dir = settings.data_dir / "runs" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        settings = settings.model_copy(
            update={"ledger_url": f"sqlite://{(run_dir / 'ledger.sqlite').resolve()}"}
        )
        outcome = asyncio.run(judge_feed(settings, report.total_sent, once=args.once))
        ok = (
            tally.total == report.total_sent
            and not tally.rejected
            and not report.failed
            and outcome == report.total_sent
        )
        print(
            "\nresult: "
            + (
                "every published event verified end to end and judged by the gateway"
                if ok
                else "MISMATCH between published, verified and judged events"
            )
        )
    return 0 if ok else 1


async def judge_feed(settings: Settings, expected: int, *, once: bool) -> int:
    """Run the gateway (with HTTP) until it has judged ``expected`` events; print verdicts."""
    from collections import Counter

    from ..ledger.store import open_ledger
    from .gateway import run_gateway

    stop = asyncio.Event()
    port = free_port()
    task = asyncio.create_task(
        run_gateway(
            settings.model_copy(update={"http_port": port}),
            http=True,
            http_port=port,
            create_topics=False,
            stop=stop,
        )
    )
    print(f"\ngateway: judging the feed (ledger {settings.resolved_ledger_url})")
    print(f"  HTTP on http://127.0.0.1:{port}: /v1/events /healthz /readyz /metrics /openapi.json")
    ledger = None
    try:
        deadline = asyncio.get_running_loop().time() + 120
        judged = 0
        while judged < expected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.5)
            if task.done():
                task.result()
            if ledger is None:
                ledger = open_ledger(settings.resolved_ledger_url)
            offsets = await asyncio.to_thread(ledger.offsets, Topics(settings.topic_prefix).raw)
            judged = sum(offsets.values())
        assert ledger is not None
        reasons = Counter(r.reason for r in ledger.rejected(limit=10**6))
        accepted = ledger.accepted_count()
        print(
            f"  judged {judged}: accepted {accepted}, rejected {sum(reasons.values())}"
            + (" (" + ", ".join(f"{k} {v}" for k, v in reasons.items()) + ")" if reasons else "")
        )
        blocks = ledger.blocks()
        print(
            f"  ledger: {len(blocks)} unit blocks, "
            f"{sum(b.size for b in blocks if b.status.value == 'retired'):,} units retired, "
            f"{sum(b.size for b in blocks if b.status.value == 'active'):,} active; "
            f"digest {ledger.digest()[:16]}"
        )
        if not once:
            print("  the gateway keeps running; Ctrl-C stops everything")
            loop = asyncio.get_running_loop()
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        return judged
    finally:
        stop.set()
        await task
        if ledger is not None:
            ledger.close()
