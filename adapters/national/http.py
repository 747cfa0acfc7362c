"""The Party's ITMO ledger over HTTP (aiohttp): list and history of ITMOs, the state
digest, health and an OpenAPI description. Read-only; it opens its own store connection
(SQLite's WAL lets it read while the adapter writes). Bad queries answer 400, never 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from typing import Any

from aiohttp import web

from adapters.national.store import NationalStore, Query
from adapters.national.units import ItmoState
from gateway.contract.itmo import ActionType, ItmoAction
from gateway.contract.itmo_identifier import parse

MAX_PAGE = 1000
#: the query parameters of the ITMO list (also the options of ``crg itmo list``)
FILTERS = (
    "state",
    "vintage",
    "action_type",
    "cooperative_approach",
    "since",
    "until",
    "after",
    "limit",
)


class BadQuery(ValueError):
    pass


def _time(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f"{name} must be an ISO 8601 time, e.g. 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def query_from(params: Any) -> Query:
    """Validated filters from query parameters (aiohttp's MultiDict or a dict)."""
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        raise BadQuery(f"unknown query parameter(s): {', '.join(unknown)}")
    state = params.get("state")
    if state is not None and state not in {s.value for s in ItmoState}:
        raise BadQuery(f"state must be one of {', '.join(s.value for s in ItmoState)}")
    action_type = params.get("action_type")
    if action_type is not None and action_type not in {t.value for t in ActionType}:
        raise BadQuery(f"action_type must be one of {', '.join(t.value for t in ActionType)}")
    ca = params.get("cooperative_approach")
    if ca is not None and not re.fullmatch(r"CA\d{4}", ca):
        raise BadQuery("cooperative_approach must look like CA0001")
    try:
        vintage = None if params.get("vintage") is None else int(params["vintage"])
        limit = int(params.get("limit", 100))
    except ValueError:
        raise BadQuery("vintage and limit must be whole numbers") from None
    if not 1 <= limit <= MAX_PAGE:
        raise BadQuery(f"limit must be between 1 and {MAX_PAGE}")
    return Query(
        state=state,
        vintage=vintage,
        cooperative_approach=ca,
        action_type=action_type,
        since=_time(params.get("since"), "since"),
        until=_time(params.get("until"), "until"),
        after=params.get("after"),
        limit=limit,
    )


def action_json(a: ItmoAction) -> dict[str, Any]:
    return {**a.row(), "first_id": str(a.first_id), "last_id": str(a.last_id)}


def _error(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"error": reason, "message": message}, status=status)


def make_national_app(store: NationalStore) -> web.Application:
    app = web.Application()
    lock = asyncio.Lock()  # the store connection is not thread-safe
    party = store.party

    async def read(fn: Any, *args: Any) -> Any:
        async with lock:
            return await asyncio.to_thread(fn, *args)

    def own(request: web.Request) -> web.Response | None:
        asked = request.match_info["party"].upper()
        if asked != party:
            return _error(404, "unknown_party", f"this adapter keeps {party}'s ledger, not {asked}")
        return None

    async def itmos(request: web.Request) -> web.Response:
        if (refused := own(request)) is not None:
            return refused
        try:
            query = query_from(request.query)
            blocks = await read(store.itmos, query)
        except ValueError as exc:  # BadQuery, or a malformed cursor
            return _error(400, "bad_query", str(exc))
        rows = [dataclasses.asdict(b) for b in blocks]
        after = rows[-1]["cursor"] if len(rows) == query.limit else None
        return web.json_response({"party": party, "itmos": rows, "next": after})

    async def itmo(request: web.Request) -> web.Response:
        if (refused := own(request)) is not None:
            return refused
        try:
            itmo_id = parse(request.match_info["itmo_id"])
        except ValueError as exc:
            return _error(400, "bad_itmo_id", str(exc))
        history = await read(store.history, itmo_id)
        if not history:
            return _error(404, "unknown_itmo", f"no action of {party} on {itmo_id}")
        return web.json_response(
            {"party": party, "itmo_id": str(itmo_id), "history": [action_json(a) for a in history]}
        )

    async def digest(request: web.Request) -> web.Response:
        if (refused := own(request)) is not None:
            return refused
        value, counts = await read(lambda: (store.digest(), store.counts()))
        return web.json_response({"party": party, "digest": value, **counts})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        try:
            await read(store.ping)
        except Exception as exc:  # any driver error means not ready
            return _error(503, "store_unreachable", str(exc)[:200])
        return web.json_response({"status": "ready"})

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(document(party))

    app.router.add_get("/v1/parties/{party}/itmos", itmos)
    app.router.add_get("/v1/parties/{party}/itmos/{itmo_id}", itmo)
    app.router.add_get("/v1/parties/{party}/digest", digest)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi)
    return app


def document(party: str) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}

    def answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": schema or error}},
        }

    def param(name: str, description: str, kind: str = "string") -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": {"type": kind},
        }

    path_party = {
        "name": "party",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": f"ISO 3166-1 alpha-3 of the Party (this adapter: {party})",
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"National ITMO registry ({party})", "version": "1",
                 "description": "A Party's Article 6 ITMO ledger kept from verified events."},
        "paths": {
            "/v1/parties/{party}/itmos": {"get": {
                "summary": "The Party's ITMO blocks (authorized by it or held under its "
                           "jurisdiction), filtered and paged",
                "parameters": [
                    path_party,
                    param("state", "AUTHORIZED, FIRST_TRANSFERRED, USED, CANCELLED, REVOKED"),
                    param("vintage", "year the outcomes occurred", "integer"),
                    param("action_type", "blocks that underwent an action of this type"),
                    param("cooperative_approach", "CANNNN"),
                    param("since", "blocks with an action at or after this time (ISO 8601)"),
                    param("until", "blocks with an action before this time (ISO 8601)"),
                    param("after", "the 'next' cursor of the previous page"),
                    param("limit", f"page size, 1 to {MAX_PAGE} (default 100)", "integer"),
                ],
                "responses": {"200": answer("a page of ITMO blocks", {"type": "object"}),
                              "400": answer("bad query"), "404": answer("not this Party")},
            }},
            "/v1/parties/{party}/itmos/{itmo_id}": {"get": {
                "summary": "The history of the block holding one ITMO",
                "parameters": [path_party, {"name": "itmo_id", "in": "path", "required": True,
                               "schema": {"type": "string"},
                               "description": "e.g. CA0001-GHA01-GHA-1000001-2023"}],
                "responses": {"200": answer("its actions, in order", {"type": "object"}),
                              "400": answer("not an ITMO identifier"),
                              "404": answer("no such ITMO in this Party's ledger")},
            }},
            "/v1/parties/{party}/digest": {"get": {
                "summary": "Deterministic hash of the Party's whole ITMO ledger",
                "parameters": [path_party],
                "responses": {"200": answer("digest and counts", {"type": "object"})},
            }},
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": answer("ok", {})}}},
            "/readyz": {"get": {"summary": "Store reachable",
                                "responses": {"200": answer("ready", {}),
                                              "503": answer("store unreachable")}}},
        },
        "components": {"schemas": {"Error": {"type": "object", "required": ["error", "message"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}}},
    }  # fmt: skip
