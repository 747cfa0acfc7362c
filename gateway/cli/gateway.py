"""``crg gateway``: verify, check against the ledger, route; optionally HTTP ingest."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer

from ..config import Settings
from ..contract.codec import SingleObjectCodec
from ..contract.schemas import registry_event_versions
from ..http.app import make_app
from ..keystore import open_key_storage
from ..keystore.reloading import ReloadingKeyRing
from ..ledger.store import open_ledger
from ..pipeline.gateway import Gateway
from .running import configured_topics, run_until_signalled, serve_http

log = structlog.get_logger("crg.gateway")


def register(sub: Any) -> None:
    p = sub.add_parser("gateway", help="run the gateway (consumer group on the raw topic)")
    p.add_argument("--http", action="store_true", help="also serve HTTP ingest and health")
    p.add_argument("--http-port", type=int, help="default: $CRG_HTTP_PORT or 8080")
    p.add_argument("--create-topics", action="store_true", help="create missing topics first")
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
    ledger = open_ledger(settings.resolved_ledger_url)
    gateway = Gateway(
        bootstrap_servers=settings.bootstrap_servers,
        ledger=ledger,
        keys=keys,
        codec=codec,
        topics=topics,
        idempotence=settings.kafka_idempotence,
        max_batch=settings.gateway_max_batch,
    )
    runner: web.AppRunner | None = None
    producer: AIOKafkaProducer | None = None
    probe = None
    try:
        if http:
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.bootstrap_servers,
                acks="all",
                enable_idempotence=settings.kafka_idempotence,
                client_id="crg-ingest",
            )
            await producer.start()
            probe = open_ledger(settings.resolved_ledger_url)
            app = make_app(
                producer=producer, keys=keys, codec=codec, topics=topics, ledger_probe=probe
            )
            port = settings.http_port if http_port is None else http_port
            runner = await serve_http(app, settings.http_host, port)
            log.info("http.listening", url=f"http://{settings.http_host}:{port}")
        await gateway.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()
        if producer is not None:
            await producer.stop()
        if probe is not None:
            probe.close()
        ledger.close()


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    return run_until_signalled(
        lambda stop: run_gateway(
            settings,
            http=args.http,
            http_port=args.http_port,
            create_topics=args.create_topics,
            stop=stop,
        )
    )
