"""``crg bench national``: events/s applied to a Party's ITMO ledger, next to the same
store's bare write rate in the same run.

Three figures on the same accepted events (a realistic mix: issuances, Article 6 labels
with first transfer at authorization, part transfers to Switzerland, CORSIA retirements,
OMGE cancellations; what the gateway would refuse is filtered out by its own rules):

- **adapter**: the real :class:`NationalAdapter` consuming the verified topic of a fresh
  local broker, applying each event with its tracking record and emitting the actions;
- **store only**: the same rules and store writes, no broker;
- **bare writes**: the floor of the store — the same number of rows (one tracking record
  per event, one row per action) inserted with plain ``executemany`` in batches of the
  same size, no rules, no reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.national.consumer import NationalAdapter
from adapters.national.rules import itmo_effect
from adapters.national.store import NationalStore, open_national_store
from gateway.contract.attestation import GATEWAY_OWNER, Attester, Claim
from gateway.contract.authorization import encode_authorization
from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRecord, KeyRing
from gateway.contract.message import EventSigner, SignedMessage
from gateway.contract.models import RegistryEvent
from gateway.contract.time import utc_text
from gateway.keystore.private import generate
from gateway.logging import configure_logging
from gateway.publishing.letters import publish_letters
from gateway.service.ledger.memory import MemoryLedger
from gateway.service.ledger.rules import Change, decide
from gateway.streaming.local_broker import LocalBroker
from gateway.streaming.produce import produce_all
from gateway.streaming.topics import Topics, ensure_topics
from ops.loadgen import generated_letters, mixed_stream
from ops.loadgen_itmo import party_keys

BATCH = 2000


@dataclass
class Figures:
    events: int
    actions: int
    adapter_rate: float
    store_rate: float
    bare_rate: float
    store: str


SINCE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def bench_key(owner: str) -> tuple[Ed25519PrivateKey, KeyRecord]:
    return generate(owner, SINCE)


def accepted_stream(n: int, signer: EventSigner | None = None) -> list[SignedMessage]:
    """``n`` signed events the gateway's ledger rules accept (more are generated and
    the refused ones dropped)."""
    if signer is None:
        private, record = bench_key("verra")
        signer = EventSigner(default_codec(), record.key_id, private)
    signers = {"verra": signer}
    codec, ledger = default_codec(), MemoryLedger()
    out: list[SignedMessage] = []
    size = n * 2
    while len(out) < n:
        out, ledger = [], MemoryLedger()
        for message in mixed_stream(signers, size, projects=max(size // 200, 10)):
            event = RegistryEvent.from_avro(codec.decode(message.value))
            decision = decide(event, ledger)
            if isinstance(decision, Change):
                ledger.apply(decision)
                out.append(message)
                if len(out) == n:
                    break
        size *= 2
    return out


@contextmanager
def scratch_store(url: str | None, party: str) -> Iterator[NationalStore]:
    """A new, empty store: a temporary SQLite file, or a fresh PostgreSQL schema."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            store = open_national_store(f"sqlite://{Path(tmp) / 'national.sqlite'}", party)
            try:
                yield store
            finally:
                store.close()
        return

    schema = f"crg_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    store = open_national_store(f"{url}{sep}options=-csearch_path%3D{schema}", party)
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


LETTERS = generated_letters(["verra"])  # Ghana's letters: the generated labels confirmed


def store_only(store: NationalStore, events: list[RegistryEvent]) -> tuple[float, int]:
    store.letters_required = True  # as the adapter runs it
    with store.transaction():
        for letter in LETTERS:
            store.record_letter(letter, encode_authorization(letter), "bench")
    started, actions = time.perf_counter(), 0
    for i in range(0, len(events), BATCH):
        with store.transaction():
            for e in events[i : i + BATCH]:
                effect = itmo_effect(e, store, store.numbering)
                actions += len(store.apply(e.registry_id, e.event_id, "bench", effect))
    return len(events) / (time.perf_counter() - started), actions


def bare_writes(store: NationalStore, events: int, actions: int) -> float:
    db = store.db
    db.execute(
        "CREATE TABLE IF NOT EXISTS bench_rows (id TEXT PRIMARY KEY, a TEXT, b BIGINT,"
        " c BIGINT, d TEXT)"
    )
    rows = [(f"r{i}", "GHA", i, i + 10, "x" * 40) for i in range(events + actions)]
    per_batch = -(-len(rows) // -(-events // BATCH))
    started = time.perf_counter()
    for i in range(0, len(rows), per_batch):
        with db.transaction():
            db.many("INSERT INTO bench_rows (id, a, b, c, d) VALUES (?, ?, ?, ?, ?)",
                    rows[i : i + per_batch])  # fmt: skip
    return events / (time.perf_counter() - started)


def attested(
    messages: list[SignedMessage], topic: str, registry: KeyRecord
) -> tuple[list[SignedMessage], KeyRing]:
    """The messages as the gateway puts them on the verified ``topic`` (its verdict,
    ledger position and attestation), and the trust store that checks them."""
    private, record = bench_key(GATEWAY_OWNER)
    attester, now = Attester(record.key_id, private), utc_text(dt.datetime.now(dt.UTC))
    codec, out = default_codec(), []
    for position, m in enumerate(messages):
        event = RegistryEvent.from_avro(codec.decode(m.value))
        said = attester.headers(
            Claim(m.value, "accepted", position, event.registry_id, event.event_id, topic, now)
        )
        headers = [
            *m.headers, ("crg_verdict", b"accepted"),
            ("crg_ledger_position", str(position).encode()), *said,
        ]  # fmt: skip
        out.append(SignedMessage(m.key, m.value, tuple(headers)))
    return out, KeyRing([registry, record])


async def adapter_run(
    bootstrap: str, topics: Topics, store: NationalStore, n: int, trust: KeyRing
) -> float:
    signer = party_keys([store.party])[0][store.party]
    adapter = NationalAdapter(
        kafka=bootstrap, store=store, topics=topics, keys=trust, signer=signer
    )
    await adapter.start()
    stop = asyncio.Event()
    serving = asyncio.create_task(adapter.serve(stop))
    first, started = 0, 0.0
    try:
        while adapter.processed < n:
            await asyncio.sleep(0.005)
            if adapter.processed and not started:  # batch one includes fetch start-up
                started, first = time.perf_counter(), adapter.processed
            if serving.done():
                serving.result()
                raise RuntimeError("the adapter stopped before applying every event")
        return (n - first) / (time.perf_counter() - started)
    finally:
        stop.set()
        await serving
        await adapter.stop()


async def run(n: int, url: str | None, party: str = "GHA") -> Figures:

    configure_logging("console", "warning")
    print(f"generating {n:,} accepted events…", flush=True)
    private, registry = bench_key("verra")
    messages = accepted_stream(n, EventSigner(default_codec(), registry.key_id, private))
    codec = default_codec()
    events = [RegistryEvent.from_avro(codec.decode(m.value)) for m in messages]
    kind = (url or "sqlite").split("://")[0].split(":")[0]
    print(f"store only ({kind})…", flush=True)
    with scratch_store(url, party) as store:
        store_rate, actions = store_only(store, events)
    print("bare writes…", flush=True)
    with scratch_store(url, party) as store:
        bare_rate = bare_writes(store, len(events), actions)
    print("adapter on the local broker…", flush=True)
    with LocalBroker() as broker, scratch_store(url, party) as store:
        topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
        await ensure_topics(broker.bootstrap_servers, topics.all(), 4)
        verified, trust = attested(messages, topics.verified, registry)
        signers, ghana = party_keys([party])
        await publish_letters(broker.bootstrap_servers, topics.authorizations,
                              [(letter, signers[letter.party]) for letter in LETTERS])  # fmt: skip
        trust = KeyRing([*trust, *ghana])
        await produce_all(broker.bootstrap_servers, topics.verified, verified)
        adapter_rate = await adapter_run(broker.bootstrap_servers, topics, store, n, trust)
        assert store.counts()["actions"] == actions, "the adapter and the store-only run differ"
    return Figures(n, actions, adapter_rate, store_rate, bare_rate, kind)


def report(f: Figures) -> str:
    return "\n".join([
        f"national-registry benchmark: {f.events:,} accepted events → {f.actions:,} ITMO "
        f"actions for GHA, store {f.store}",
        f"  bare writes (same rows, executemany):      {f.bare_rate:>10,.0f} events/s",
        f"  store only (rules + store, no broker):     {f.store_rate:>10,.0f} events/s",
        f"  adapter (verified topic → store → emitted): {f.adapter_rate:>9,.0f} events/s",
        f"  adapter / bare writes: {f.adapter_rate / f.bare_rate:.0%};"
        f" store only / bare writes: {f.store_rate / f.bare_rate:.0%}",
    ])  # fmt: skip
