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
from gateway import resources
from gateway.contract.itmo import ActionType, ItmoAction
from gateway.contract.itmo_identifier import parse
from gateway.contract.time import utc_text

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
    return utc_text(moment)


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
    """``schemas/openapi/national-registry.v1.json``, titled with this adapter's Party."""
    doc = resources.openapi("national-registry.v1")
    doc["info"]["title"] = f"National ITMO registry ({party})"
    return doc
