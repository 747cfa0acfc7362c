"""HTTP ingest and the operational endpoints, over a real socket, against the real broker."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.contract.codec import default_codec
from gateway.contract.keys import KeyRing
from gateway.contract.message import HEADER_SIGNATURE, EventSigner
from gateway.contract.models import RegistryEvent
from gateway.service.http.app import make_app
from gateway.service.http.openapi import document
from gateway.service.ledger.backends import open_ledger
from gateway.streaming.topics import Topics, ensure_topics
from tests.conftest import RegistryKey
from tests.factories import envelope, issued
from tests.support.brokers import Broker
from tests.support.harness import Harness
from tests.support.openapi import documented, served

pytestmark = pytest.mark.broker
CODEC = default_codec()
KEY = RegistryKey("verra")


@pytest.fixture
async def server(broker: Broker, tmp_path: Path) -> AsyncIterator[tuple[str, Harness]]:
    ledger = open_ledger(f"sqlite://{tmp_path / 'l.sqlite'}")
    harness = Harness(broker, ledger, KeyRing([KEY.record]))
    await ensure_topics(broker.bootstrap_servers, harness.topics.all(), 2)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    await producer.start()
    app = make_app(
        producer=producer,
        keys=lambda: harness.keys,
        codec=CODEC,
        topics=harness.topics,
        ledger_probe=ledger,
    )
    async with TestServer(app, host="127.0.0.1") as srv:
        assert served(app) == documented(document(CODEC.max_size))  # every route, nothing else
        yield str(srv.make_url("")), harness
    await producer.stop()
    ledger.close()


def signed_body(**kw: object) -> tuple[bytes, dict[str, str]]:
    message = EventSigner(CODEC, KEY.key_id, KEY.private).sign_event(
        RegistryEvent.model_validate(envelope(issued(), **kw))
    )
    return message.value, {
        "CRG-Key-Id": KEY.key_id,
        "CRG-Signature": dict(message.headers)[HEADER_SIGNATURE].decode(),
        "Content-Type": "application/avro",
    }


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/events", data=body, headers=headers) as answer,
    ):
        return answer.status, await answer.json()


async def test_ingest_puts_the_event_on_the_raw_topic_unchanged(
    server: tuple[str, Harness],
) -> None:
    url, harness = server
    body, headers = signed_body()
    status, answer = await post(url, body, headers)
    assert status == 202
    assert answer["event_id"] == "evt-1" and answer["topic"] == harness.topics.raw
    (routed,) = await harness.read(harness.topics.raw, expected=1)
    assert routed.value == body
    assert routed.key == b"verra/4150"
    assert routed.headers["ce_id"] == b"evt-1"
    assert routed.headers[HEADER_SIGNATURE] == headers["CRG-Signature"].encode()


async def test_ingest_answers_each_client_mistake_with_its_status(
    server: tuple[str, Harness],
) -> None:
    url, _ = server
    body, headers = signed_body()
    bad_sig = {**headers, "CRG-Signature": base64.b64encode(bytes(64)).decode()}
    assert (await post(url, body, bad_sig)) == (
        401,
        {"error": "signature_invalid", "message": "signature does not verify over the value"},
    )
    status, answer = await post(url, body, {**headers, "CRG-Key-Id": "nobody"})
    assert (status, answer["error"]) == (401, "key_unknown")
    status, answer = await post(url, body, {"Content-Type": "application/avro"})
    assert (status, answer["error"]) == (401, "signature_missing")

    from gateway.contract.signing import encode_signature, sign

    def signed(value: bytes) -> dict[str, str]:
        return {**headers, "CRG-Signature": encode_signature(sign(KEY.private, value)).decode()}

    garbage = b"\xc3\x01" + bytes(20)
    status, answer = await post(url, garbage, signed(garbage))
    assert (status, answer["error"]) == (400, "undecodable.unknown_schema")
    avro = RegistryEvent.model_validate(envelope(issued())).to_avro()
    avro["payload"][1]["quantity"] = 7
    invalid = CODEC.encode(avro)
    status, answer = await post(url, invalid, signed(invalid))
    assert (status, answer["error"]) == (422, "model_invalid")
    assert "quantity" in answer["message"]
    huge = b"\xc3\x01" + bytes(CODEC.max_size + 10)
    status, answer = await post(url, huge, signed(huge))
    assert (status, answer["error"]) == (413, "undecodable.too_large")


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.binary(max_size=600),
    key_id=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
    signature=st.text(alphabet="ABCDEFGHabcdefgh0123456789+/=", max_size=100),
    flip=st.integers(min_value=-1, max_value=300),
)
async def test_hostile_requests_never_get_a_500(
    server: tuple[str, Harness], body: bytes, key_id: str, signature: str, flip: int
) -> None:
    url, _ = server
    if flip >= 0:  # sometimes a valid message with one bit flipped
        valid, headers = signed_body()
        data = bytearray(valid)
        data[flip % len(data)] ^= 1
        body, key_id, signature = bytes(data), headers["CRG-Key-Id"], headers["CRG-Signature"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url}/v1/events",
            data=body,
            headers={"CRG-Key-Id": key_id, "CRG-Signature": signature},
        ) as answer,
    ):
        assert answer.status in (400, 401, 413, 422), await answer.text()
        assert (await answer.json())["error"]


async def test_health_readiness_metrics_openapi(server: tuple[str, Harness]) -> None:
    url, _ = server
    body, headers = signed_body(event_id="m1")
    await post(url, body, headers)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as r:
            assert r.status == 200
        async with http.get(f"{url}/readyz") as r:
            assert (r.status, (await r.json())["status"]) == (200, "ready")
        async with http.get(f"{url}/metrics") as r:
            text = await r.text()
            assert 'crg_http_ingest_total{status="202"}' in text
        async with http.get(f"{url}/openapi.json") as r:
            doc = await r.json()
            assert doc["openapi"].startswith("3.")
            assert set(doc["paths"]["/v1/events"]["post"]["responses"]) == {
                "202",
                "400",
                "401",
                "413",
                "422",
                "503",
            }


async def test_not_ready_when_the_topic_is_missing(broker: Broker, tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite://{tmp_path / 'l.sqlite'}")
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    app = make_app(
        producer=producer,
        keys=KeyRing,
        codec=CODEC,
        topics=Topics("no-such-prefix-xyz"),
        ledger_probe=ledger,
    )
    try:
        async with (
            TestServer(app, host="127.0.0.1") as srv,
            aiohttp.ClientSession() as http,
            http.get(srv.make_url("/readyz")) as r,
        ):
            assert r.status == 503
            assert "broker" in json.loads(await r.text())
    finally:
        await producer.stop()
        ledger.close()
