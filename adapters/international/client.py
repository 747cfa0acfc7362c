"""The adapter's HTTP client for the international registry's interface
(``schemas/openapi/international-registry.v1.json``): one call per ITMO action, the
action id as idempotency key, a bearer token or mutual TLS from configuration (never
logged)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from gateway.contract.itmo import ItmoAction


@dataclass(frozen=True)
class Outcome:
    """The registry's final answer to an action."""

    outcome: str  # "recorded" or "rejected"
    status: int
    answer: dict[str, Any]


#: the registry's interface: the path under /v1/parties/{party}/ that takes each action type
PATHS = {
    "AUTHORIZATION": "authorizations",
    "FIRST_TRANSFER": "first-transfers",
    "TRANSFER": "transfers",
    "ACQUISITION": "acquisitions",
    "USE_NDC": "uses",
    "USE_OIMP": "uses",
    "CANCELLATION": "cancellations",
    "VOLUNTARY_CANCELLATION": "cancellations",
    "LABEL_REVOCATION": "authorization-revocations",
}


class Retryable(Exception):
    """No final answer: timeout, connection trouble, 429, 5xx, or credentials refused
    (an operator must fix those; the action is never dropped)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def request_body(action: ItmoAction) -> dict[str, Any]:
    """The JSON the interface takes: the action's fields and its identifiers."""
    return {**action.row(), "first_id": str(action.first_id), "last_id": str(action.last_id)}


@dataclass(frozen=True)
class Credentials:
    token: str | None = None
    client_cert: str | None = None  # PEM files for mutual TLS
    client_key: str | None = None
    ca_file: str | None = None

    def __repr__(self) -> str:  # never show the token
        return (
            f"Credentials(token={'***' if self.token else None}, client_cert={self.client_cert!r})"
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        if not (self.client_cert or self.ca_file):
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


class RegistryClient:
    def __init__(
        self, base_url: str, credentials: Credentials | None = None, timeout: float = 5.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials or Credentials()
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RegistryClient:
        headers = {}
        if self.credentials.token:
            headers["Authorization"] = f"Bearer {self.credentials.token}"
        connector = aiohttp.TCPConnector(ssl=self.credentials.ssl_context() or True, limit=64)
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=self.timeout, connector=connector
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def submit(self, action: ItmoAction) -> Outcome:
        """One attempt. Returns the final answer, or raises :class:`Retryable`."""
        assert self._session is not None, "use the client as an async context manager"
        party = quote(action.party, safe="")  # checked before, quoted all the same
        url = f"{self.base_url}/v1/parties/{party}/{PATHS[action.action_type.value]}"
        try:
            async with self._session.post(
                url, json=request_body(action), headers={"Idempotency-Key": action.action_id}
            ) as response:
                status = response.status
                try:
                    answer = await response.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    answer = {"error": "not_json", "message": (await response.text())[:500]}
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise Retryable(f"{type(exc).__name__}: {exc}"[:300]) from None
        if status in (200, 201):
            return Outcome("recorded", status, answer if isinstance(answer, dict) else {})
        if status in (401, 403) or status == 429 or status >= 500:
            wait = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise Retryable(f"HTTP {status}: {answer.get('error', '')}", wait)
        return Outcome("rejected", status, answer if isinstance(answer, dict) else {})
