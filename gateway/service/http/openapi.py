"""The OpenAPI description of the gateway's HTTP interface, served at ``/openapi.json``:
``schemas/openapi/gateway.v1.json`` with this gateway's body limit."""

from __future__ import annotations

from typing import Any

from gateway import resources


def document(max_bytes: int) -> dict[str, Any]:
    doc = resources.openapi("gateway.v1")
    body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/avro"]
    body["schema"]["maxLength"] = max_bytes
    return doc
