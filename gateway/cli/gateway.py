"""``crg gateway``: verify, check against the ledger, route; optionally HTTP ingest."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from ..broker.topics import Topics
from ..config import Settings
from ..contract.codec import SingleObjectCodec
from ..contract.schemas import registry_event_versions
from ..http.app import make_app
from ..keystore import open_key_storage
from ..keystore.reloading import ReloadingKeyRing
from ..ledger.store import LedgerStore, open_ledger
from ..members import MEMBER_ENV, Members, MembersFailed, member_command, member_env
from ..metrics import INGEST_REGISTRY, REGISTRY, members_registry
from ..pipeline.gateway import Gateway
from .errors import CommandError
from .running import configured_topics, run_until_signalled, serve_http

log = structlog.get_logger("crg.gateway")


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


async def run_gateway(
    settings: Settings,
    *,
    http: bool,
    http_port: int | None,
    create_topics: bool,
    stop: asyncio.Event,
) -> None:
    topics = await configured_topics(settings, create=create_topics)
    codec = SingleObjectCodec(registry_event_versions(), max_size=settings.max_message_bytes)
    keys = ReloadingKeyRing(open_key_storage(settings.resolved_keys_url))
    ledger = open_ledger(settings.resolved_ledger_url)  # creates the tables
    try:
        if settings.gateway_processes > 1:
            await _run_members(settings, ledger, keys, codec, topics, http, http_port, stop)
            return
        if MEMBER_ENV in os.environ:  # one of `crg gateway --processes N`'s members
            structlog.contextvars.bind_contextvars(member=int(os.environ[MEMBER_ENV]))
        gateway = Gateway(
            bootstrap_servers=settings.bootstrap_servers,
            ledger=ledger,
            keys=keys,
            codec=codec,
            topics=topics,
            idempotence=settings.kafka_idempotence,
            max_batch=settings.gateway_max_batch,
            quiet_after=settings.gateway_sequence_quiet_after,
        )
        async with _ingest(settings, keys, codec, topics, http, http_port, (REGISTRY,)):
            await gateway.run(stop)
    finally:
        ledger.close()


async def _run_members(
    settings: Settings,
    ledger: LedgerStore,
    keys: ReloadingKeyRing,
    codec: SingleObjectCodec,
    topics: Topics,
    http: bool,
    http_port: int | None,
    stop: asyncio.Event,
) -> None:
    """This process serves HTTP and watches the members, which judge."""
    metrics_dir = Path(tempfile.mkdtemp(prefix="crg-gateway-metrics-"))
    members = Members(
        settings.gateway_processes,
        member_command(),
        member_env(
            {
                "CRG_DATA_DIR": str(settings.data_dir),
                "CRG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
                "CRG_LEDGER_URL": settings.resolved_ledger_url,
            },
            metrics_dir,
        ),
    )
    log.info("gateway.members", processes=members.count, ledger=ledger.dialect)
    try:
        judging = (members_registry(metrics_dir),)
        async with _ingest(settings, keys, codec, topics, http, http_port, judging):
            await members.run(stop)
    except MembersFailed as exc:
        raise CommandError(str(exc)) from None
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


@asynccontextmanager
async def _ingest(
    settings: Settings,
    keys: ReloadingKeyRing,
    codec: SingleObjectCodec,
    topics: Topics,
    http: bool,
    http_port: int | None,
    judging: tuple[CollectorRegistry, ...],
) -> AsyncIterator[None]:
    """HTTP ingest and health while the body runs, if asked; ``judging`` holds the
    judging metrics ``GET /metrics`` shows next to ingest's."""
    if not http:
        yield
        return
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        client_id="crg-ingest",
    )
    await producer.start()
    probe = open_ledger(settings.resolved_ledger_url)
    runner: web.AppRunner | None = None
    try:
        app = make_app(
            producer=producer,
            keys=keys,
            codec=codec,
            topics=topics,
            ledger_probe=probe,
            metrics_of=(INGEST_REGISTRY, *judging),
        )
        port = settings.http_port if http_port is None else http_port
        runner = await serve_http(app, settings.http_host, port)
        log.info("http.listening", url=f"http://{settings.http_host}:{port}")
        yield
    finally:
        if runner is not None:
            await runner.cleanup()
        await producer.stop()
        probe.close()


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    if args.processes is not None:
        if args.processes < 1:
            raise CommandError("--processes must be at least 1")
        settings = settings.model_copy(update={"gateway_processes": args.processes})
    return run_until_signalled(
        lambda stop: run_gateway(
            settings,
            http=args.http,
            http_port=args.http_port,
            create_topics=args.create_topics,
            stop=stop,
        )
    )
