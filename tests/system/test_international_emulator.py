"""The emulator and the adapter's client over a real loopback HTTP server, both checked
against the OpenAPI document of the interface."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from adapters.international.client import (
    PATHS,
    Credentials,
    Outcome,
    RegistryClient,
    Retryable,
    request_body,
)
from adapters.international.emulator import OPENAPI, Emulator, Faults, make_emulator_app
from gateway.contract.itmo import ActionType
from ops.loadgen_itmo import action_stream

DOC = json.loads(OPENAPI.read_text(encoding="utf-8"))
TYPES = {"string": str, "integer": int, "null": type(None), "object": dict, "array": list}


def conforms(value: Any, schema: dict[str, Any]) -> list[str]:
    """A small structural check: $ref, required properties and JSON types."""
    if "$ref" in schema:
        schema = DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    problems = []
    kinds = schema.get("type")
    if kinds is not None:
        allowed = tuple(TYPES[k] for k in ([kinds] if isinstance(kinds, str) else kinds))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            return [f"{value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{value!r} not in enum")
    if isinstance(value, dict):
        problems += [f"missing {k}" for k in schema.get("required", []) if k not in value]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                problems += [f"{name}: {p}" for p in conforms(value[name], sub)]
    return problems


TOKEN = f"t-{uuid.uuid4().hex}"


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[Emulator, str]]:
    emu = Emulator(token=TOKEN)
    server = TestServer(make_emulator_app(emu), host="127.0.0.1")
    await server.start_server()
    yield emu, str(server.make_url(""))
    await server.close()


async def test_idempotency_keys_business_errors_and_auth(emulator: tuple[Emulator, str]) -> None:
    emu, url = emulator
    first, second, *_ = action_stream(10)
    async with RegistryClient(url, Credentials(token=TOKEN)) as client:
        recorded = await client.submit(first)
        assert recorded == Outcome(
            "recorded", 201, {"status": "recorded", "action_id": first.action_id, "sequence": 1}
        )
        assert await client.submit(first) == recorded  # same key, same body: same answer
        changed = replace(first, quantity=first.quantity - 1, serial_last=first.serial_last - 1)
        conflict = await client.submit(changed)  # same key, different body
        assert (conflict.outcome, conflict.status, conflict.answer["error"]) == (
            "rejected",
            409,
            "idempotency_key_reused",
        )
        unknown = replace(
            first,
            action_id="other",
            action_type=ActionType.CANCELLATION,
            serial_first=10**8,
            serial_last=10**8,
        )
        refusal = await client.submit(unknown)
        assert (refusal.outcome, refusal.status, refusal.answer["error"]) == (
            "rejected",
            422,
            "unknown_itmo",
        )
        assert emu.applied == {first.action_id: 1}
    async with RegistryClient(url) as anonymous:
        with pytest.raises(Retryable, match="401"):
            await anonymous.submit(second)
    async with RegistryClient(url, Credentials(token="wrong")) as wrong:
        with pytest.raises(Retryable, match="401"):
            await wrong.submit(second)
    assert TOKEN not in repr(Credentials(token=TOKEN))


@pytest.mark.parametrize(
    ("faults", "applied"),
    [
        (Faults(drop_after_commit_rate=1.0), 1),  # applied, the answer lost
        (Faults(reset_rate=1.0), 0),  # dropped before anything
        (Faults(error_rate=1.0), 0),  # 503 or 429
    ],
)
async def test_faults_then_the_same_call_again(
    emulator: tuple[Emulator, str], faults: Faults, applied: int
) -> None:
    emu, url = emulator
    (action,) = action_stream(1)
    async with RegistryClient(url, Credentials(token=TOKEN)) as client:
        emu.set_faults(faults)
        with pytest.raises(Retryable):
            await client.submit(action)
        assert len(emu.applied) == applied
        emu.set_faults(Faults())
        answer = await client.submit(action)  # the retry, with the same key
    assert answer.outcome == "recorded" and answer.answer["sequence"] == 1
    assert emu.applied == {action.action_id: 1}  # exactly once, whatever happened


async def test_requests_and_answers_follow_the_openapi_document(
    emulator: tuple[Emulator, str],
) -> None:
    _, url = emulator
    routes = {
        (r.method, r.resource.canonical)  # type: ignore[union-attr]
        for r in make_emulator_app(Emulator()).router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/v1/parties")
    }
    documented = {
        (method.upper(), path)
        for path, item in DOC["paths"].items()
        if path.startswith("/v1/parties")
        for method in item
    }
    served = {(m, p) for m, p in routes if m != "HEAD"}
    post_kinds = {p.rsplit("/", 1)[-1] for m, p in documented if m == "POST"}
    assert post_kinds == set(PATHS.values())
    assert ("GET", "/v1/parties/{party}/holdings") in served & documented
    schema = DOC["components"]["schemas"]["ItmoAction"]
    actions = action_stream(60)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        seen: set[tuple[str, int]] = set()
        for action in actions:
            body = request_body(action)
            assert conforms(body, schema) == []
            path = f"/v1/parties/{action.party}/{PATHS[action.action_type.value]}"
            async with http.post(
                f"{url.rstrip('/')}{path}", json=body, headers={"Idempotency-Key": action.action_id}
            ) as answer:
                operation = DOC["paths"][path.replace(action.party, "{party}")]["post"]
                documented_answer = operation["responses"][str(answer.status)]
                answer_schema = documented_answer["content"]["application/json"]["schema"]
                assert conforms(await answer.json(), answer_schema) == []
                seen.add((path.rsplit("/", 1)[-1], answer.status))
        async with http.get(f"{url.rstrip('/')}/v1/parties/GHA/holdings") as answer:
            holdings = DOC["paths"]["/v1/parties/{party}/holdings"]["get"]["responses"]["200"]
            assert (
                conforms(await answer.json(), holdings["content"]["application/json"]["schema"])
                == []
            )
    assert {status for _, status in seen} == {201, 422}  # both kinds of answer were checked
