"""The assembly of the system: settings in, stores and consumers out, built one way.

The CLI, ``crg up`` (:mod:`gateway.system`), replay, the tests and the tooling (chaos,
benchmarks) build every consumer here, so a consumer is put together the same way
whoever runs it. Replay passes its own consumer group and, for a scratch replay, the
topics its outputs go to, through the consumers' constructors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from adapters.international.client import Credentials, RegistryClient
from adapters.international.consumer import InternationalAdapter
from adapters.international.emulator import Emulator, make_emulator_app
from adapters.international.store import InternationalStore, open_international_store
from adapters.national.consumer import NationalAdapter
from adapters.national.http import make_national_app
from adapters.national.rules import Numbering
from adapters.national.store import NationalStore, open_national_store
from gateway.config import Settings
from gateway.contract.attestation import GATEWAY_OWNER, Attester
from gateway.contract.codec import SingleObjectCodec
from gateway.contract.errors import KeyUnknown
from gateway.contract.itmo_message import PartySigner, party_owner
from gateway.contract.keys import KeyRing
from gateway.contract.message import EventSigner
from gateway.contract.schemas import registry_event_versions
from gateway.keystore import open_key_storage
from gateway.keystore.private import (
    generate,
    load_private_key,
    private_key_path,
    write_private_key,
)
from gateway.keystore.reloading import ReloadingKeyRing
from gateway.metrics import INGEST_REGISTRY, REGISTRY, members_registry
from gateway.publishing.journal import PublishJournal
from gateway.publishing.publisher import Publisher, PublishReport, make_producer
from gateway.service.consumer import Gateway
from gateway.service.http.app import make_app
from gateway.service.ledger.backends import open_ledger
from gateway.service.ledger.store import LedgerStore
from gateway.service.members import MEMBER_ENV, Members, member_command, member_env
from gateway.streaming.access import refusals
from gateway.streaming.process import ConsumerProcess
from gateway.streaming.topics import Topics, ensure_topics

# the runners log under their service's name, as each service does
gateway_log = structlog.get_logger("crg.gateway")
national_log = structlog.get_logger("crg.national")
international_log = structlog.get_logger("crg.international")

KINDS = ("gateway", "national", "international")


class SetupError(Exception):
    """Settings or files that cannot make a working part (no signing key, a key of
    another registry…): told to the operator without a traceback."""


# -- topics and HTTP ------------------------------------------------------------------------
async def configured_topics(settings: Settings, *, create: bool) -> Topics:
    """The topic names under the configured prefix, created first if asked."""
    topics = Topics(settings.topic_prefix)
    if create:
        await ensure_topics(settings.kafka, topics.all(), settings.partitions, settings.replication)
    return topics


async def serve_http(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port``; the caller cleans the runner up."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


# -- stores -----------------------------------------------------------------------------------
def open_gateway_ledger(settings: Settings, url: str | None = None) -> LedgerStore:
    """The gateway's ledger (the configured one unless ``url`` names another)."""
    return open_ledger(url or settings.resolved_ledger_url)


def numbering(settings: Settings) -> Numbering:
    return Numbering(settings.itmo_party_registries, settings.itmo_serial_offsets)


def open_party_store(settings: Settings, party: str, url: str | None = None) -> NationalStore:
    return open_national_store(url or settings.national_url(party), party, numbering(settings))


def open_international(settings: Settings, url: str | None = None) -> InternationalStore:
    return open_international_store(url or settings.resolved_international_store_url)


def open_kind_store(kind: str, settings: Settings, party: str | None, url: str | None) -> Any:
    """The store of consumer ``kind`` at ``url`` (default: the live one)."""
    if kind == "gateway":
        return open_gateway_ledger(settings, url)
    if kind == "national":
        if not party:
            raise ValueError("the national adapter's store needs a Party")
        return open_party_store(settings, party.upper(), url)
    return open_international(settings, url)


# -- consumers --------------------------------------------------------------------------------
def event_codec(settings: Settings) -> SingleObjectCodec:
    return SingleObjectCodec(registry_event_versions(), max_size=settings.max_message_bytes)


def reloading_keys(settings: Settings) -> ReloadingKeyRing:
    return ReloadingKeyRing(open_key_storage(settings.resolved_keys_url))


def gateway_consumer(
    settings: Settings,
    ledger: LedgerStore,
    topics: Topics,
    *,
    keys: KeyRing | ReloadingKeyRing | None = None,
    codec: SingleObjectCodec | None = None,
    group_id: str | None = None,
    outputs: Topics | None = None,
    attester: Attester | None = None,
) -> Gateway:
    return Gateway(
        kafka=settings.kafka,
        ledger=ledger,
        keys=reloading_keys(settings) if keys is None else keys,
        codec=codec or event_codec(settings),
        topics=topics,
        idempotence=settings.kafka_idempotence,
        max_batch=settings.gateway_max_batch,
        quiet_after=settings.gateway_sequence_quiet_after,
        group_id=group_id,
        outputs=outputs,
        attester=attester or gateway_attester(settings),
    )


def national_consumer(
    settings: Settings,
    store: NationalStore,
    topics: Topics,
    *,
    group_id: str | None = None,
    outputs: Topics | None = None,
) -> NationalAdapter:
    return NationalAdapter(
        kafka=settings.kafka,
        store=store,
        topics=topics,
        keys=reloading_keys(settings),
        signer=party_signer(settings, store.party),
        letters=settings.national_letters == "required",
        idempotence=settings.kafka_idempotence,
        group_id=group_id,
        outputs=outputs,
    )


def international_consumer(
    settings: Settings,
    store: InternationalStore,
    topics: Topics,
    client: RegistryClient,
    *,
    group_id: str | None = None,
    outputs: Topics | None = None,
) -> InternationalAdapter:
    return InternationalAdapter(
        kafka=settings.kafka,
        store=store,
        topics=topics,
        client=client,
        keys=reloading_keys(settings),
        idempotence=settings.kafka_idempotence,
        group_id=group_id,
        outputs=outputs,
        parties=frozenset(settings.international_parties) or None,
    )


def registry_client(settings: Settings, url: str | None = None) -> RegistryClient:
    return RegistryClient(url or settings.international_registry_url, credentials(settings))


def consumer_of(
    kind: str,
    settings: Settings,
    store: Any,
    *,
    group_id: str | None = None,
    outputs: Topics | None = None,
) -> tuple[ConsumerProcess[Any], RegistryClient | None]:
    """The consumer process of ``kind`` over ``store`` on the configured topics, and the
    client it needs opened, if any."""
    topics = Topics(settings.topic_prefix)
    if kind == "gateway":
        return gateway_consumer(settings, store, topics, group_id=group_id, outputs=outputs), None
    if kind == "national":
        national = national_consumer(settings, store, topics, group_id=group_id, outputs=outputs)
        return national, None
    client = registry_client(settings)
    international = international_consumer(
        settings, store, topics, client, group_id=group_id, outputs=outputs
    )
    return international, client


def credentials(settings: Settings) -> Credentials:
    token = settings.international_registry_token
    return Credentials(
        token=token.get_secret_value() if token else None,
        client_cert=str(settings.international_client_cert or "") or None,
        client_key=str(settings.international_client_key or "") or None,
        ca_file=str(settings.international_ca_file or "") or None,
    )


async def run_international(
    settings: Settings,
    *,
    registry_url: str | None,
    store_url: str | None,
    create_topics: bool,
    stop: asyncio.Event,
) -> None:
    topics = await configured_topics(settings, create=create_topics)
    store = open_international(settings, store_url)
    try:
        async with registry_client(settings, registry_url) as client:
            adapter = international_consumer(settings, store, topics, client)
            international_log.info("international.registry", url=client.base_url)
            await adapter.run(stop)
    finally:
        store.close()


# -- running ----------------------------------------------------------------------------------
async def run_gateway(
    settings: Settings,
    *,
    http: bool,
    http_port: int | None,
    create_topics: bool,
    stop: asyncio.Event,
) -> None:
    topics = await configured_topics(settings, create=create_topics)
    codec = event_codec(settings)
    keys = reloading_keys(settings)
    ledger = open_gateway_ledger(settings)  # creates the tables
    try:
        if settings.gateway_processes > 1:
            await _run_members(settings, ledger, keys, codec, topics, http, http_port, stop)
            return
        if MEMBER_ENV in os.environ:  # one of `crg gateway --processes N`'s members
            structlog.contextvars.bind_contextvars(member=int(os.environ[MEMBER_ENV]))
        gateway = gateway_consumer(settings, ledger, topics, keys=keys, codec=codec)
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
                **settings.kafka_env(),
                "CRG_LEDGER_URL": settings.resolved_ledger_url,
            },
            metrics_dir,
        ),
    )
    gateway_log.info("gateway.members", processes=members.count, ledger=ledger.dialect)
    try:
        judging = (members_registry(metrics_dir),)
        async with _ingest(settings, keys, codec, topics, http, http_port, judging):
            await members.run(stop)
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
        **settings.kafka.options(),
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        client_id="crg-ingest",
    )
    await producer.start()
    probe = open_gateway_ledger(settings)
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
        gateway_log.info("http.listening", url=f"http://{settings.http_host}:{port}")
        yield
    finally:
        if runner is not None:
            await runner.cleanup()
        await producer.stop()
        probe.close()


async def run_national(
    settings: Settings,
    party: str,
    *,
    store_url: str | None,
    http: bool,
    http_port: int | None,
    create_topics: bool,
    stop: asyncio.Event,
) -> None:
    topics = await configured_topics(settings, create=create_topics)
    store = open_party_store(settings, party, store_url)
    adapter = national_consumer(settings, store, topics)
    runner: web.AppRunner | None = None
    reader: NationalStore | None = None
    try:
        if http:
            reader = open_party_store(settings, party, store_url)
            port = settings.national_http_port if http_port is None else http_port
            runner = await serve_http(make_national_app(reader), settings.http_host, port)
            national_log.info(
                "national.http", url=f"http://{settings.http_host}:{port}/v1/parties/{party}/itmos"
            )
        await adapter.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()
        if reader is not None:
            reader.close()
        store.close()


async def serve_emulator(emulator: Emulator, host: str, port: int, stop: asyncio.Event) -> None:
    runner = await serve_http(make_emulator_app(emulator), host, port)
    international_log.info("emulator.listening", url=f"http://{host}:{port}")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


# -- publishing -----------------------------------------------------------------------------
def active_signing_key(settings: Settings, registry: str, ring: KeyRing) -> str | None:
    """The newest key of ``registry`` that is active now and whose private key is on disk."""
    now = dt.datetime.now(dt.UTC)
    key_dir = settings.resolved_private_key_dir
    for record in reversed(ring.for_registry(registry)):
        if record.is_active(now) and private_key_path(key_dir, record.key_id).exists():
            return record.key_id
    return None


def _private_key_of(settings: Settings, owner: str, how: str) -> tuple[str, Ed25519PrivateKey]:
    """The newest active key of ``owner`` with its private key on disk."""
    ring = open_key_storage(settings.resolved_keys_url).load()
    key_id = active_signing_key(settings, owner, ring)
    if key_id is None:
        raise SetupError(
            f"no active key of {owner} with a private key in "
            f"{settings.resolved_private_key_dir}: {how}"
        )
    return key_id, load_private_key(private_key_path(settings.resolved_private_key_dir, key_id))


def party_signer(settings: Settings, party: str) -> PartySigner:
    """The Party's key that signs the ITMO actions its national adapter emits."""
    key_id, private = _private_key_of(
        settings, party_owner(party), f"crg keys generate --party {party} --register"
    )
    return PartySigner(party, key_id, private)


def gateway_attester(settings: Settings) -> Attester:
    """The gateway's attestation key: its newest active key with a private key on disk."""
    key_id, private = _private_key_of(
        settings,
        GATEWAY_OWNER,
        "the gateway attests every verdict with one: crg keys generate --gateway --register",
    )
    return Attester(key_id, private)


def choose_signer(settings: Settings, registry: str, key_id: str | None) -> EventSigner:
    ring = open_key_storage(settings.resolved_keys_url).load()
    key_dir = settings.resolved_private_key_dir
    if key_id is None:
        key_id = active_signing_key(settings, registry, ring)
        if key_id is None:
            raise SetupError(
                f"no active key of registry {registry!r} with a private key in {key_dir}; "
                f"run: crg keys generate --registry {registry} --register"
            )
    try:
        record = ring.get(key_id)
    except KeyUnknown as exc:
        raise SetupError(str(exc)) from None
    if record.registry_id != registry:
        raise SetupError(f"key {key_id} belongs to registry {record.registry_id!r}")
    path = private_key_path(key_dir, key_id)
    if not path.exists():
        raise SetupError(f"no private key file {path}")
    codec = SingleObjectCodec(registry_event_versions(), max_size=settings.max_message_bytes)
    return EventSigner(codec, key_id, load_private_key(path))


def ensure_signing_key(settings: Settings, owner: str) -> str:
    """The active signing key of ``owner`` (a registry, or the gateway), made and
    registered first if it has none (valid from ten years back, so that the sample
    exports' dates are inside it)."""
    storage = open_key_storage(settings.resolved_keys_url)
    existing = active_signing_key(settings, owner, storage.load())
    if existing is not None:
        return existing
    now = dt.datetime.now(dt.UTC)
    private, record = generate(owner, now.replace(microsecond=0) - dt.timedelta(days=3650))
    write_private_key(private_key_path(settings.resolved_private_key_dir, record.key_id), private)
    storage.save([record])
    return record.key_id


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
        await ensure_topics(settings.kafka, topics.all(), settings.partitions, settings.replication)
    journal = PublishJournal(journal_path(settings))
    producer = make_producer(settings.kafka, idempotence=settings.kafka_idempotence)
    try:
        async with refusals(settings.kafka):
            await producer.start()
    except BaseException:
        journal.close()
        raise
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
