"""The whole system in one event loop, for ``crg up`` (:func:`up`): the gateway with HTTP
ingest, a national-registry adapter per configured Party (with its query API), the
international-registry emulator and adapter — all on 127.0.0.1, SQLite in the data
directory — and a watcher that says when everything published has gone all the way."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

from adapters.international.emulator import Emulator
from adapters.international.store import InternationalStore
from adapters.national.store import NationalStore
from gateway.assembly import (
    SetupError,
    choose_signer,
    ensure_signing_key,
    journal_path,
    open_gateway_ledger,
    open_international,
    open_party_store,
    party_signer,
    publish_items,
    run_gateway,
    run_international,
    run_national,
    serve_emulator,
)
from gateway.collector import settle_collector
from gateway.config import Settings
from gateway.contract.attestation import GATEWAY_OWNER
from gateway.contract.authorization import PartyAuthorization
from gateway.contract.codec import default_codec
from gateway.contract.itmo_message import party_owner
from gateway.contract.models import LabelKind, UnitsIssued
from gateway.keystore import open_key_storage
from gateway.publishing.journal import PublishJournal
from gateway.publishing.letters import publish_letters
from gateway.publishing.reader import read_and_verify
from gateway.publishing.sources import Draft
from gateway.publishing.sources.story import article6_story, story_letter
from gateway.publishing.sources.verra import read_verra
from gateway.service.ledger.store import LedgerStore
from gateway.storage.tracking import TransactionalStore
from gateway.streaming.apache_kafka import KAFKA_VERSION, KafkaCluster, kafka_classpath
from gateway.streaming.local_broker import LocalBroker, free_port
from gateway.streaming.topics import Topics, ensure_topics, read_to_end


@dataclass
class System:
    settings: Settings
    parties: list[str]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    emulator: Emulator = field(default_factory=Emulator)
    ports: dict[str, int] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def topics(self) -> Topics:
        return Topics(self.settings.topic_prefix)

    def urls(self) -> list[str]:
        host = "http://127.0.0.1"
        gw, em = self.ports["gateway"], self.ports["emulator"]
        lines = [
            f"gateway        {host}:{gw}/v1/events  /healthz  /readyz  /metrics  /openapi.json",
            *(
                f"national {p}    {host}:{self.ports[p]}/v1/parties/{p}/itmos  /openapi.json"
                for p in self.parties
            ),
            f"international  {host}:{em}/v1/parties/GHA/holdings  /v1/state  /openapi.json"
            " (the emulator)",
        ]
        return lines

    async def start(self) -> None:
        s = self.settings
        self.ports = {"gateway": free_port(), "emulator": free_port()}
        self.ports.update({p: free_port() for p in self.parties})
        registry_url = f"http://127.0.0.1:{self.ports['emulator']}"
        runs: list[Callable[[], Awaitable[None]]] = [
            lambda: serve_emulator(self.emulator, "127.0.0.1", self.ports["emulator"], self.stop),
            lambda: run_gateway(
                s, http=True, http_port=self.ports["gateway"], create_topics=False, stop=self.stop
            ),
            *(
                (
                    lambda p=p: run_national(
                        s,
                        p,
                        store_url=None,
                        http=True,
                        http_port=self.ports[p],
                        create_topics=False,
                        stop=self.stop,
                    )
                )
                for p in self.parties
            ),
            lambda: run_international(
                s, registry_url=registry_url, store_url=None, create_topics=False, stop=self.stop
            ),
        ]
        self.tasks = [asyncio.create_task(run()) for run in runs]

    def check(self) -> None:
        """Raise what stopped a component, if one stopped."""
        for task in self.tasks:
            if task.done():
                task.result()
                raise RuntimeError("a component stopped on its own")

    async def close(self) -> None:
        self.stop.set()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        problems = [r for r in results if isinstance(r, BaseException)]
        if problems:
            raise problems[0]


def forget_positions(settings: Settings, parties: list[str]) -> None:
    """The embedded broker keeps nothing across runs: its topics start empty again, so
    offsets stored against the previous run's topics mean nothing. The stores keep all
    they recorded; their tracking records make the replayed feed change nothing."""
    topics = Topics(settings.topic_prefix)
    stores: list[tuple[TransactionalStore, str]] = [
        (open_gateway_ledger(settings), topics.raw),
        *((open_party_store(settings, p), topics.verified) for p in parties),
        (open_international(settings), topics.itmo_actions),
    ]
    for store, topic in stores:
        try:
            store.forget_offsets(topic)
        finally:
            store.close()


@dataclass(frozen=True)
class Baseline:
    """What the stores held before this run published anything."""

    accepted: int
    actions: dict[str, int]


def baseline(s: Settings, parties: list[str]) -> Baseline:
    ledger = open_gateway_ledger(s)
    try:
        accepted = ledger.accepted_count()
    finally:
        ledger.close()
    actions = {}
    for party in parties:
        store = open_party_store(s, party)
        try:
            actions[party] = store.counts()["actions"]
        finally:
            store.close()
    return Baseline(accepted, actions)


async def wait_until_through(
    s: Settings,
    parties: list[str],
    published: int,
    since: Baseline,
    within: float = 180,
    check: Callable[[], None] = lambda: None,
) -> dict[str, int]:
    """Until the gateway judged ``published`` events, each national adapter read as many
    verified messages as the gateway accepted since ``since``, and the international
    adapter as many actions as the national adapters recorded since then, holding none
    back. (Counted from
    the stores: tansu's end offsets can lag behind batched writes.) ``check`` raises if
    a component stopped."""
    topics = Topics(s.topic_prefix)
    ledger = open_gateway_ledger(s)
    nationals = {p: open_party_store(s, p) for p in parties}
    international = open_international(s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within

    def offsets(store: TransactionalStore, topic: str) -> int:
        return sum(store.offsets(topic).values())

    try:
        while True:
            check()
            judged = await asyncio.to_thread(offsets, ledger, topics.raw)
            verified = await asyncio.to_thread(ledger.accepted_count) - since.accepted
            read = {
                p: await asyncio.to_thread(offsets, n, topics.verified)
                for p, n in nationals.items()
            }
            actions = sum(
                [
                    (await asyncio.to_thread(n.counts))["actions"] - since.actions.get(p, 0)
                    for p, n in nationals.items()
                ]
            )
            sent = await asyncio.to_thread(offsets, international, topics.itmo_actions)
            held = await asyncio.to_thread(international.held_count)
            progress = {
                "judged": judged,
                "verified": verified,
                "actions": actions,
                "answered": sent - held,
                "held": held,
                **{f"read {p}": r for p, r in read.items()},
            }
            if (
                judged >= published
                and all(r >= verified for r in read.values())
                and sent >= actions
                and held == 0  # read, and none waiting for another Party's action
            ):
                return progress
            if loop.time() > deadline:
                raise TimeoutError(f"not through after {within:.0f} s: {progress}")
            await asyncio.sleep(0.5)
    finally:
        ledger.close()
        international.close()
        for n in nationals.values():
            n.close()


def summary(system: System) -> list[str]:
    """What happened, from the stores (all runs together)."""
    s = system.settings
    out: list[str] = []
    ledger: LedgerStore = open_gateway_ledger(s)
    try:
        reasons = Counter(r.reason for r in ledger.rejected(limit=10**6, include_reprocessed=True))
        blocks = ledger.blocks()
        out.append(
            f"gateway ledger: {ledger.accepted_count()} events accepted, "
            f"{sum(reasons.values())} rejected"
            + (
                " (" + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) + ")"
                if reasons
                else ""
            )
        )
        out.append(
            f"  {len(blocks)} unit blocks: "
            f"{sum(b.size for b in blocks if b.status.value == 'active'):,} units active, "
            f"{sum(b.size for b in blocks if b.status.value == 'retired'):,} retired; "
            f"digest {ledger.digest()[:16]}"
        )
    finally:
        ledger.close()
    for party in system.parties:
        store: NationalStore = open_party_store(s, party)
        try:
            actions = store.actions()
            kinds = Counter(a.action_type.value for a in actions)
            out.append(
                f"ITMO ledger of {party}: {len(actions)} actions"
                + (
                    " (" + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")"
                    if kinds
                    else ""
                )
                + f"; digest {store.digest()[:16]}"
            )
            for a in actions:
                if a.ca_party:
                    out.append(
                        f"  corresponding adjustment: {a.ca_party} {a.ca_sign} "
                        f"{a.quantity:,} for {a.ca_year} ({a.action_type.value} "
                        f"{a.first_id}…)"
                    )
            held = sum(h.quantity for h in store.holdings())
            out.append(f"  holds {held:,} ITMOs")
        finally:
            store.close()
    international: InternationalStore = open_international(s)
    try:
        counts = international.counts()
        out.append(
            "international registry adapter: "
            + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
            if counts
            else "international registry adapter: no actions"
        )
    finally:
        international.close()
    state = system.emulator.registry.state()
    for party, holdings in state["holdings"].items():
        out.append(f"  emulator holds for {party}: {sum(h['quantity'] for h in holdings):,} ITMOs")
    return out


@contextmanager
def _embedded_broker(kind: str, data_dir: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap servers, a description) of the broker ``crg up`` runs."""
    if kind == "kafka":
        try:
            kafka_classpath()
        except FileNotFoundError as exc:
            raise SetupError(str(exc)) from None
        with KafkaCluster(1, data_dir / "kafka") as cluster:
            yield (
                cluster.bootstrap_servers,
                (f"Apache Kafka {KAFKA_VERSION}, one KRaft node, log in {cluster.data_dir}"),
            )
        return
    with LocalBroker(log_path=data_dir / "broker.log") as tansu:
        yield tansu.bootstrap_servers, f"tansu, memory storage, pid {tansu.pid}"


def up(
    settings: Settings,
    parties: list[str],
    samples: Traversable,
    *,
    once: bool,
    broker: str = "tansu",
    say: Callable[[str], None] = print,
) -> bool:
    """``crg up``: the embedded broker and topics, a Verra signing key, the real Verra
    export of ``samples`` and a scripted Article 6 story signed and published, read back
    and verified as a downstream party would, then the whole system run until everything
    published has gone all the way (and on, unless ``once``). True when every event went
    through; ``say`` gets each line of the account.

    ``broker``: ``tansu`` (memory storage: everything is published again each run) or
    ``kafka`` (one Apache Kafka KRaft node keeping its log under the data directory: a
    second run resumes from the stored offsets and publishes nothing new)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    persistent = broker == "kafka"
    with _embedded_broker(broker, settings.data_dir) as (bootstrap, described):
        settings = settings.model_copy(
            update={"bootstrap_servers": bootstrap, "kafka_idempotence": persistent}
        )
        topics = Topics(settings.topic_prefix)
        asyncio.run(ensure_topics(bootstrap, topics.all(), settings.partitions))
        say(f"broker: {bootstrap} ({described})")
        say(f"topics: {', '.join(topics.all())}")

        key_id = ensure_signing_key(settings, "verra")
        ensure_signing_key(settings, GATEWAY_OWNER)  # the gateway attests its verdicts
        for party in parties:  # each Party signs the ITMO actions its adapter emits
            ensure_signing_key(settings, party_owner(party))
        say(f"registry key: verra / {key_id} (trust store {settings.resolved_keys_url})")
        if "GHA" in parties:  # Ghana's letter, which confirms the story's label
            letter = story_letter("verra")
            if asyncio.run(_letter_missing(settings, letter)):
                signed = [(letter, party_signer(settings, "GHA"))]
                asyncio.run(publish_letters(bootstrap, topics.authorizations, signed))
            say(f"letter of authorization: GHA / {letter.letter_of_authorization} on "
                f"{topics.authorizations}")  # fmt: skip
        signer = choose_signer(settings, "verra", key_id)

        export = samples / "verra" / "transactions.csv"
        with export.open(encoding="utf-8-sig", newline="") as stream:
            items = list(read_verra(stream))
        rows = sum(
            len(i.records)
            for i in items
            if isinstance(i, Draft) and i.fields["payload"]["type"] == "UnitsIssued"
        )
        say(f"\nfeed: {export}\n  {rows} export rows → {len(items)} events")
        story = article6_story("verra")
        say(
            f"story: {len(story)} Article 6 events on project {story[0].fields['project_id']}"
            " (authorization, first transfer, transfer to Switzerland, NDC use, CORSIA)"
        )
        if not persistent:
            # tansu keeps nothing across runs: send everything again; the journal gives
            # each event its old sequence, so the bytes are identical.
            forget_positions(settings, parties)
        report = asyncio.run(
            publish_items(settings, signer, "verra", [*items, *story], resend=not persistent)
        )
        for line in report.lines():
            say(line)
        if persistent:  # the topic kept every event the journal says was acknowledged
            journal = PublishJournal(journal_path(settings))
            on_topic = journal.acked("verra")
            journal.close()
        else:
            on_topic = report.total_sent
        say(f"{report.total_sent} new; {on_topic} on {topics.raw}")

        keys = open_key_storage(settings.resolved_keys_url).load()
        tally = asyncio.run(
            read_and_verify(
                bootstrap,
                topics.raw,
                keys,
                default_codec(),
                expected=on_topic,
                wait_seconds=30,
            )
        )
        say(
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
            say(
                f"\nan Article 6 authorized issuance, project {issued.project.project_id} "
                f"{issued.project.name!r}, host Party {issued.project.host_party}:"
            )
            say(f"  {issued.quantity} units, serial {issued.serial_block.serial}")
            for lbl in issued.labels:
                say(f"  label {lbl.kind}: {lbl.text}")

        settle_collector()  # from here on it runs like the long-lived services
        outcome = asyncio.run(_follow(settings, parties, report.total_sent, once=once, say=say))
        ok = tally.total == on_topic and not tally.rejected and not report.failed and outcome
        say(
            "\nresult: "
            + (
                "every published event verified end to end, judged by the gateway and "
                "followed to the ITMO ledgers and the international registry"
                if ok
                else "MISMATCH between published, verified and followed events"
            )
        )
    return ok


async def _letter_missing(settings: Settings, letter: PartyAuthorization) -> bool:
    """Is this version of the letter not on the authorizations topic yet (a persistent
    broker keeps it from the last run)?"""
    records = await read_to_end(settings.kafka, Topics(settings.topic_prefix).authorizations)
    return not any(r.key == letter.kafka_key for r in records)


async def _follow(
    settings: Settings,
    parties: list[str],
    published: int,
    *,
    once: bool,
    say: Callable[[str], None],
) -> bool:
    """Run the system until everything published went all the way: each Party's ITMO
    actions reach the international registry in causal order (Switzerland's use of the
    story's units after Ghana's transfer of them), however the adapters interleave."""

    system = System(settings, parties)
    since = baseline(settings, parties)
    await system.start()
    try:
        say("\nthe system (all on 127.0.0.1):")
        for line in system.urls():
            say(f"  {line}")
        progress = await wait_until_through(settings, parties, published, since, check=system.check)
        say("\nthrough: " + ", ".join(f"{k} {v}" for k, v in progress.items()))
        for line in summary(system):
            say(line)
        if not once:
            say("\neverything keeps running; Ctrl-C stops it")
            loop = asyncio.get_running_loop()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, system.stop.set)
            await system.stop.wait()
        return True
    finally:
        await system.close()
