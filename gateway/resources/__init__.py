"""Files the product reads at run time, packaged with it and read with
:mod:`importlib.resources`: the interface documents of ``schemas/`` (Avro schemas,
OpenAPI documents) and the registry exports of ``samples/`` that ``crg up`` feeds.
In a checkout these are links to the repository's ``schemas/`` and ``samples/``."""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any


def schemas() -> Traversable:
    """``schemas/``: ``avro/`` (every registry-event and ITMO-action schema version) and
    ``openapi/`` (every HTTP interface the product serves or calls)."""
    return files(__name__) / "schemas"


def samples() -> Traversable:
    """``samples/registry-exports/``: real public registry exports, with their terms."""
    return files(__name__) / "samples" / "registry-exports"


def kafka_properties(name: str) -> dict[str, str]:
    """The Apache Kafka broker settings ``kafka/<name>.properties`` (``server``: every
    deployment's; ``secured``: what a secured cluster adds), as name → value."""
    text = (files(__name__) / "kafka" / f"{name}.properties").read_text(encoding="utf-8")
    settings: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def openapi(name: str) -> dict[str, Any]:
    """The OpenAPI document ``schemas/openapi/<name>.json`` (e.g. ``gateway.v1``), parsed:
    a fresh copy for a server to fill in its own settings."""
    document: dict[str, Any] = json.loads(
        (schemas() / "openapi" / f"{name}.json").read_text(encoding="utf-8")
    )
    return document
