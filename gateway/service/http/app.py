"""aiohttp application: ``POST /v1/events`` and the operational endpoints.

Ingest does the stateless checks (signature, key, decoding, model) so a client hears
about its own mistakes at once, then puts the event on the raw topic unchanged; the
ledger checks happen in the pipeline like for any other event. Client input never
yields a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import MessageTooLarge
from gateway.contract.keys import KeyRing
from gateway.contract.message import (
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    signature_headers,
    signed_message,
)
from gateway.metrics import INGEST_REGISTRY, INGESTED, REGISTRY
from gateway.service.http.openapi import document
from gateway.service.ledger.store import LedgerStore
from gateway.service.verdict import Verdict, authenticate, http_status
from gateway.streaming.process import Incoming
from gateway.streaming.topics import Topics

log = structlog.get_logger("crg.http")

PRODUCER = web.AppKey("producer", AIOKafkaProducer)


def _error(status: int, reason: str, message: str) -> web.Response:
    INGESTED.labels(str(status)).inc()
    return web.json_response({"error": reason, "message": message}, status=status)


def make_app(
    *,
    producer: AIOKafkaProducer,
    keys: Callable[[], KeyRing],
    codec: SingleObjectCodec,
    topics: Topics,
    ledger_probe: LedgerStore,
    metrics_of: Sequence[CollectorRegistry] = (INGEST_REGISTRY, REGISTRY),
) -> web.Application:
    """``metrics_of``: the registries ``GET /metrics`` exposes (see :mod:`gateway.metrics`)."""
    app = web.Application(client_max_size=codec.max_size)
    app[PRODUCER] = producer
    probe_lock = asyncio.Lock()

    async def ingest(request: web.Request) -> web.Response:
        try:
            value = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, MessageTooLarge.reason, f"body over {codec.max_size} bytes")
        headers = [
            (HEADER_KEY_ID, request.headers.get("CRG-Key-Id", "").encode()),
            (HEADER_SIGNATURE, request.headers.get("CRG-Signature", "").encode()),
        ]
        event = authenticate(Incoming(value, headers, None, "http"), keys(), codec)
        if isinstance(event, Verdict):
            assert event.reason is not None
            return _error(http_status(event.reason), event.reason, event.message)
        key_id, signature = signature_headers(headers)
        message = signed_message(event, value, key_id, signature)
        try:
            meta = await producer.send_and_wait(
                topics.raw, message.value, key=message.key, headers=list(message.headers)
            )
        except Exception as exc:  # the broker, not the client, failed
            log.error("ingest.broker_unavailable", error=repr(exc), event_id=event.event_id)
            return _error(503, "broker_unavailable", "the event was not stored; retry")
        INGESTED.labels("202").inc()
        log.info(
            "ingest.accepted",
            event_id=event.event_id,
            registry=event.registry_id,
            partition=meta.partition,
            offset=meta.offset,
        )
        return web.json_response(
            {
                "event_id": event.event_id,
                "registry_id": event.registry_id,
                "topic": topics.raw,
                "partition": meta.partition,
                "offset": meta.offset,
            },
            status=202,
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        problems: dict[str, Any] = {}
        try:
            # all-topics metadata: asking for one topic would auto-create it on some brokers
            cluster = await asyncio.wait_for(producer.client.fetch_all_metadata(), 5)
            if topics.raw not in cluster.topics():
                problems["broker"] = f"topic {topics.raw} does not exist"
        except Exception as exc:
            problems["broker"] = repr(exc)
        try:
            async with probe_lock:
                await asyncio.to_thread(ledger_probe.ping)
        except Exception as exc:
            problems["ledger"] = repr(exc)
        if problems:
            return web.json_response({"status": "not ready", **problems}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(_: web.Request) -> web.Response:
        body = b"".join([generate_latest(registry) for registry in metrics_of])
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(document(codec.max_size))

    app.router.add_post("/v1/events", ingest)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    return app
