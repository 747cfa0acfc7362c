"""``crg emulator international``: an independent implementation of the international
registry's interface (``schemas/openapi/international-registry.v1.json``) for tests and
demos. It holds each Party's ITMOs (:mod:`.holdings`), enforces idempotency keys (same
key and body: the same answer again; same key, different body: 409), refuses business
errors with a code (422; a refusal changes nothing and is judged afresh if called
again), and injects faults on demand: errors (503, 429), dropped connections before
anything happens, latency, and lost answers after commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from aiohttp import web

from adapters.international.client import PATHS
from adapters.international.emulator.holdings import Refused, Registry
from gateway import resources

log = structlog.get_logger("crg.emulator")

OPENAPI = resources.schemas() / "openapi" / "international-registry.v1.json"
KINDS = sorted(set(PATHS.values()))


@dataclass
class Faults:
    error_rate: float = 0.0  # 503 or 429 before anything happens
    reset_rate: float = 0.0  # connection dropped before anything happens
    drop_after_commit_rate: float = 0.0  # applied, then the answer is lost
    latency_ms: float = 0.0
    seed: int = 0


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    digest: str  # of the request body


class Emulator:
    def __init__(self, token: str | None = None, faults: Faults | None = None) -> None:
        self.token = token
        self.registry = Registry()
        self.answers: dict[str, Answer] = {}  # idempotency key → the answer that changed state
        self.digests: dict[str, str] = {}  # idempotency key → the body it came with
        self.applied: dict[str, int] = {}  # action id → times applied (must stay 1)
        self.down = False  # answer 503 to everything (an outage)
        self.requests = 0  # calls received, faults and outages included
        self.set_faults(faults or Faults())

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def answer(self, party: str, kind: str, key: str, body: dict[str, Any]) -> Answer:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        first_digest = self.digests.setdefault(key, digest)
        if first_digest != digest:
            return Answer(
                409,
                {
                    "error": "idempotency_key_reused",
                    "message": f"key {key} was used for another request",
                },
                digest,
            )
        known = self.answers.get(key)
        if known is not None:
            if known.digest != digest:
                return Answer(
                    409,
                    {
                        "error": "idempotency_key_reused",
                        "message": f"key {key} was used for another request",
                    },
                    digest,
                )
            return known
        action_type = str(body.get("action_type", ""))
        try:
            if body.get("party") != party:
                raise Refused(
                    "invalid_action", f"the action is {body.get('party')}'s, not {party}'s"
                )
            if PATHS.get(action_type) != kind:
                raise Refused("invalid_action", f"{action_type!r} does not go to /{kind}")
            if body.get("action_id") != key:
                raise Refused("invalid_action", "the idempotency key must be the action id")
            self.registry.apply(party, action_type, body)
        except Refused as refused:
            # a refusal changed nothing: it is not kept, the next call is judged afresh
            # (an acquirer's use may arrive before the transfer that gives it the units)
            return Answer(422, {"error": refused.code, "message": refused.message}, digest)
        else:
            self.applied[key] = self.applied.get(key, 0) + 1
            answer = Answer(
                201, {"status": "recorded", "action_id": key, "sequence": len(self.applied)}, digest
            )
        self.answers[key] = answer
        return answer


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer: the client sees a reset."""
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=500)  # never reaches the client


def make_emulator_app(emulator: Emulator) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)

    def authorized(request: web.Request) -> bool:
        if emulator.token is None:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {emulator.token}".encode())

    async def record(request: web.Request) -> web.Response:
        emulator.requests += 1
        if not authorized(request):
            return _json(401, {"error": "unauthorized", "message": "bearer token required"})
        faults = emulator.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if emulator.down:
            return _json(503, {"error": "unavailable", "message": "the registry is down"})
        roll = emulator._rng.random()
        if roll < faults.reset_rate:
            return _drop(request)
        if roll < faults.reset_rate + faults.error_rate:
            if emulator._rng.random() < 0.5:
                return web.json_response(
                    {"error": "rate_limited", "message": "slow down"},
                    status=429,
                    headers={"Retry-After": "0"},
                )
            return _json(503, {"error": "unavailable", "message": "try again"})
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return _json(
                400,
                {"error": "idempotency_key_missing", "message": "Idempotency-Key header required"},
            )
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _json(400, {"error": "bad_json", "message": "the body is not JSON"})
        if not isinstance(body, dict):
            return _json(400, {"error": "bad_json", "message": "the body must be an object"})
        party, kind = request.match_info["party"], request.match_info["kind"]
        answer = emulator.answer(party, kind, key, body)
        if answer.status == 201 and emulator._rng.random() < faults.drop_after_commit_rate:
            return _drop(request)  # committed, but the caller never hears it
        return _json(answer.status, answer.body)

    async def holdings(request: web.Request) -> web.Response:
        if not authorized(request):
            return _json(401, {"error": "unauthorized", "message": "bearer token required"})
        party = request.match_info["party"]
        return _json(200, {"party": party, "holdings": emulator.registry.holdings(party)})

    async def state(_: web.Request) -> web.Response:
        return _json(
            200,
            {
                **emulator.registry.state(),
                "applied": len(emulator.applied),
                "applied_twice": sorted(k for k, n in emulator.applied.items() if n > 1),
            },
        )

    async def faults(request: web.Request) -> web.Response:
        try:
            emulator.set_faults(Faults(**await request.json()))
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": "bad_faults", "message": str(exc)})
        log.info("emulator.faults", **asdict(emulator.faults))
        return _json(200, asdict(emulator.faults))

    async def healthz(_: web.Request) -> web.Response:
        return _json(503 if emulator.down else 200, {"status": "down" if emulator.down else "ok"})

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(
            text=OPENAPI.read_text(encoding="utf-8"), content_type="application/json"
        )

    kinds = "|".join(KINDS)
    app.router.add_post(f"/v1/parties/{{party}}/{{kind:{kinds}}}", record)
    app.router.add_get("/v1/parties/{party}/holdings", holdings)
    app.router.add_get("/v1/state", state)
    app.router.add_put("/v1/faults", faults)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    return app
