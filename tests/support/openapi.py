"""What an aiohttp application serves against what its OpenAPI document describes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

METHODS = {"get", "post", "put", "patch", "delete"}


def served(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route but HEAD and the document itself."""
    return {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD" and r.resource.canonical != "/openapi.json"
    }


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }
