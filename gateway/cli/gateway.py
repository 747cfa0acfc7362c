"""``crg gateway``: verify, check against the ledger, route; optionally HTTP ingest."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer

from ..broker.topics import Topics, ensure_topics
from ..config import Settings
from ..contract.codec import SingleObjectCodec
from ..contract.schemas import registry_event_versions
from ..http.app import make_app
from ..keystore import open_key_storage
from ..keystore.reloading import ReloadingKeyRing
from ..ledger.store import open_ledger
from ..pipeline.gateway import Gateway

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
    topics = Topics(settings.topic_prefix)
    if create_topics:
        await ensure_topics(
            settings.bootstrap_servers, topics.all(), settings.partitions, settings.replication
        )
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
            runner = web.AppRunner(
                make_app(
                    producer=producer, keys=keys, codec=codec, topics=topics, ledger_probe=probe
                )
            )
            await runner.setup()
            port = settings.http_port if http_port is None else http_port
            await web.TCPSite(runner, settings.http_host, port).start()
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
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_gateway(
            settings,
            http=args.http,
            http_port=args.http_port,
            create_topics=args.create_topics,
            stop=stop,
        )

    asyncio.run(main())
    return 0
