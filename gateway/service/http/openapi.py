"""The OpenAPI description of the gateway's HTTP interface, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": schema or _ERROR}}}
    return {"description": description, **body}


def document(max_bytes: int) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Carbon Registry Gateway",
            "version": "1",
            "description": "Signed registry events in, verdicts on Kafka out.",
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Ingest one signed event",
                    "description": "The body is the Avro single-object encoded event, exactly the "
                    "signed bytes. Answers 202 once the event is durably on the raw "
                    "topic (acks=all); the ledger checks follow asynchronously and "
                    "their verdict lands on the verified or rejected topic.",
                    "parameters": [
                        {
                            "name": "CRG-Key-Id",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "CRG-Signature",
                            "in": "header",
                            "required": True,
                            "description": "base64 Ed25519 signature over the domain prefix + body",
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/avro": {
                                "schema": {
                                    "type": "string",
                                    "format": "binary",
                                    "maxLength": max_bytes,
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _answer(
                            "Accepted for judgement", {"$ref": "#/components/schemas/Ingested"}
                        ),
                        "400": _answer("Undecodable (reason undecodable.*)"),
                        "401": _answer("Signature or key refused (reason signature_* / key_*)"),
                        "413": _answer("Body larger than the limit"),
                        "422": _answer("Decodes but breaks a model rule (model_invalid)"),
                        "503": _answer("Broker unavailable; retry"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Process is alive",
                    "responses": {"200": {"description": "alive"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Broker and ledger reachable",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "description": "stable reason code"},
                        "message": {"type": "string"},
                    },
                },
                "Ingested": {
                    "type": "object",
                    "required": ["event_id", "registry_id"],
                    "properties": {
                        "event_id": {"type": "string"},
                        "registry_id": {"type": "string"},
                        "topic": {"type": "string"},
                        "partition": {"type": "integer"},
                        "offset": {"type": "integer"},
                    },
                },
            }
        },
    }
