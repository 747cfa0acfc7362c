"""Apache Kafka secured: TLS (a CA and the nodes' certificate made by the test), SASL/SCRAM-
SHA-512 with one principal per role, and the ACLs of ``gateway/streaming/acls.py``.

Each role does its part over SASL_SSL (registry → gateway → Ghana's national adapter →
international adapter); every operation a role is not granted is refused with a clear
error and writes nothing; a wrong password fails at once, and no password is ever shown.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

from adapters.international.client import Credentials, RegistryClient
from adapters.international.consumer import InternationalAdapter
from adapters.international.store import open_international_store
from adapters.national.consumer import NationalAdapter
from adapters.national.store import open_national_store
from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.publishing.letters import publish_letters
from gateway.publishing.publisher import make_producer
from gateway.service.consumer import Gateway
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.access import KafkaAccess, KafkaAccessRefused
from gateway.streaming.process import ConsumerProcess
from gateway.streaming.topics import Topics, ensure_topics, list_topics, topic_partitions
from ops.kafka_security import ADMIN, SecuredKafka, secured_kafka
from ops.loadgen_itmo import party_keys
from tests.conftest import RegistryKey
from tests.support.emulator import serving
from tests.support.harness import gateway_identity
from tests.support.national import LETTERS
from tests.system.test_national_adapter import signed_stream

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
TOPICS = Topics()  # the grants are for the default topic names
TOKEN = "t-secured"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    with secured_kafka(tmp_path_factory.mktemp("secured")) as kafka:
        asyncio.run(ensure_topics(kafka.access(ADMIN), TOPICS.all(), 3))
        yield kafka


async def count(admin: KafkaAccess, topic: str) -> int:
    """Messages on ``topic`` (read by the operator)."""
    consumer = AIOKafkaConsumer(**admin.options(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in await topic_partitions(admin, topic)]
        ends = await consumer.end_offsets(parts)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def run_until(process: ConsumerProcess[Any], done: Callable[[], bool]) -> None:
    await process.start()
    try:
        async with asyncio.timeout(90):
            while not done():
                await process.step(timeout_ms=200)
            await process.settle_acks()
    finally:
        await process.stop()


async def test_each_role_does_its_part_over_sasl_ssl(secured: SecuredKafka, tmp_path: Path) -> None:
    key = RegistryKey("verra")
    stream = signed_stream(key)
    attester, gateway_key = gateway_identity()
    signers, parties = party_keys(["GHA"])

    producer = make_producer(secured.access("registry"), idempotence=True)
    await producer.start()
    try:
        for m in stream:
            await producer.send_and_wait(TOPICS.raw, m.value, key=m.key, headers=list(m.headers))
    finally:
        await producer.stop()

    ledger = open_ledger(f"sqlite://{tmp_path / 'ledger.sqlite'}")
    gateway = Gateway(
        kafka=secured.access("gateway"),
        ledger=ledger,
        keys=lambda: KeyRing([key.record]),
        codec=default_codec(),
        topics=TOPICS,
        idempotence=True,
        attester=attester,
    )
    await run_until(gateway, lambda: gateway.processed >= len(stream))
    assert ledger.accepted_count() == len(stream) and ledger.rejected() == []
    ledger.close()

    # Ghana publishes its letters with its own principal; they confirm the stories' labels
    letters = [(letter, signers["GHA"]) for letter in LETTERS]
    await publish_letters(secured.access("national-gha"), TOPICS.authorizations, letters)
    ghana = open_national_store(f"sqlite://{tmp_path / 'GHA.sqlite'}", "GHA")
    national = NationalAdapter(
        kafka=secured.access("national-gha"),
        store=ghana,
        topics=TOPICS,
        keys=KeyRing([key.record, gateway_key, *parties]),
        signer=signers["GHA"],
        idempotence=True,
    )
    await run_until(national, lambda: national.processed >= len(stream))
    actions = ghana.actions()
    assert len(actions) == 8  # Ghana's ITMO actions of the three stories

    store = open_international_store(f"sqlite://{tmp_path / 'intl.sqlite'}")
    async with (
        serving(TOKEN) as (emulator, url),
        RegistryClient(url, Credentials(token=TOKEN), timeout=5) as client,
    ):
        international = InternationalAdapter(
            kafka=secured.access("international"),
            store=store,
            topics=TOPICS,
            client=client,
            keys=parties,
            idempotence=True,
        )
        await run_until(international, lambda: international.processed >= len(actions))
    counts = store.counts()
    assert counts.get("recorded", 0) + counts.get("rejected", 0) == len(actions), counts
    assert len(emulator.applied) == counts.get("recorded", 0) > 0

    # what each role sees of the cluster is what it was granted
    assert await list_topics(secured.access("registry")) == [TOPICS.raw]
    assert TOPICS.verified not in await list_topics(secured.access("international"))


async def refused_write(access: KafkaAccess, topic: str) -> BaseException:
    producer = make_producer(access, idempotence=True)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError) as refused:
            await asyncio.wait_for(producer.send_and_wait(topic, b"forged", key=b"x"), 30)
        return refused.value
    finally:
        await producer.stop()


async def refused_read(access: KafkaAccess, topic: str, group: str) -> BaseException:
    consumer = AIOKafkaConsumer(
        topic, **access.options(), group_id=group, auto_offset_reset="earliest"
    )
    try:
        with pytest.raises((TopicAuthorizationFailedError, GroupAuthorizationFailedError)) as no:
            await consumer.start()
            async with asyncio.timeout(30):
                while True:
                    await consumer.getmany(timeout_ms=200)
        return no.value
    finally:
        await consumer.stop()


async def test_what_a_role_is_not_granted_is_refused_and_writes_nothing(
    secured: SecuredKafka,
) -> None:
    admin = secured.access(ADMIN)
    verified_before = await count(admin, TOPICS.verified)
    actions_before = await count(admin, TOPICS.itmo_actions)

    # nobody but the gateway writes the verified topic
    for user in ("registry", "national-gha", "international"):
        refused = await refused_write(secured.access(user), TOPICS.verified)
        print(f"{user} writing {TOPICS.verified}: {refused}")
    # a registry writes only the raw topic: not ITMO actions
    print("registry writing ITMO actions:", await refused_write(
        secured.access("registry"), TOPICS.itmo_actions
    ))  # fmt: skip
    # a registry does not read the raw topic (the other registries' events)
    print("registry reading raw:", await refused_read(
        secured.access("registry"), TOPICS.raw, "snoop"
    ))  # fmt: skip
    # Ghana's adapter may not take Switzerland's group
    print("national-gha in Switzerland's group:", await refused_read(
        secured.access("national-gha"), TOPICS.verified, TOPICS.group("national", "CHE")
    ))  # fmt: skip

    assert await count(admin, TOPICS.verified) == verified_before
    assert await count(admin, TOPICS.itmo_actions) == actions_before


async def test_a_process_in_the_wrong_role_stops_with_a_clear_error(
    secured: SecuredKafka, tmp_path: Path
) -> None:
    """The gateway run with a registry's credentials may not read the raw topic: it says
    so and ends, rather than retrying for ever."""
    ledger = open_ledger(f"sqlite://{tmp_path / 'ledger.sqlite'}")
    gateway = Gateway(
        kafka=secured.access("registry"),
        ledger=ledger,
        keys=lambda: KeyRing([]),
        codec=default_codec(),
        topics=TOPICS,
        idempotence=True,
    )
    started = time.monotonic()
    with pytest.raises(KafkaAccessRefused) as refused:
        await asyncio.wait_for(gateway.run(asyncio.Event()), 60)
    print(refused.value)
    assert "Kafka refused registry" in str(refused.value)
    assert "AuthorizationFailed" in str(refused.value)
    assert time.monotonic() - started < 60
    ledger.close()


def crg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CRG_LOG_FORMAT": "json", **env},
        timeout=120,
        cwd=REPO,
    )


async def test_a_wrong_password_fails_at_once_and_no_password_is_shown(
    secured: SecuredKafka, tmp_path: Path
) -> None:
    wrong = {**secured.env("gateway"), "CRG_KAFKA_SASL_PASSWORD": "not-the-password"}
    started = time.monotonic()
    run = crg(wrong, "--data-dir", str(tmp_path), "topics", "list")
    took = time.monotonic() - started
    print(run.stderr.strip().splitlines()[-1], f"({took:.1f} s)")
    assert run.returncode == 2, run.stderr
    assert "refused the credentials of gateway (SCRAM-SHA-512)" in run.stderr
    assert took < 20
    assert "not-the-password" not in run.stdout + run.stderr

    right = crg(secured.env("gateway"), "--data-dir", str(tmp_path), "topics", "list")
    assert right.returncode == 0, right.stderr
    assert TOPICS.verified in right.stdout.split()
    for password in secured.passwords.values():
        assert password not in right.stdout + right.stderr


async def test_a_long_running_process_ends_on_a_refusal_and_waits_for_an_absent_broker(
    secured: SecuredKafka, tmp_path: Path
) -> None:
    """A wrong password ends the adapter with the refusal at once; a broker that cannot be
    reached is transient: the adapter waits for it, with back-off, until stopped."""
    wrong = NationalAdapter(
        kafka=secured.access("national-gha", "wrong"),
        store=open_national_store(f"sqlite://{tmp_path / 'GHA.sqlite'}", "GHA"),
        topics=TOPICS,
        keys=KeyRing([]),
        signer=party_keys(["GHA"])[0]["GHA"],
    )
    with pytest.raises(KafkaAccessRefused, match="refused the credentials of national-gha"):
        await asyncio.wait_for(wrong.run(asyncio.Event()), 30)

    unreachable = NationalAdapter(
        kafka=KafkaAccess("127.0.0.1:9"),  # nothing listens there
        store=open_national_store(f"sqlite://{tmp_path / 'GHA2.sqlite'}", "GHA"),
        topics=TOPICS,
        keys=KeyRing([]),
        signer=party_keys(["GHA"])[0]["GHA"],
    )
    stop = asyncio.Event()
    running = asyncio.create_task(unreachable.run(stop))
    await asyncio.sleep(3)
    assert not running.done()  # waiting for the broker, not dead
    stop.set()
    await asyncio.wait_for(running, 30)
