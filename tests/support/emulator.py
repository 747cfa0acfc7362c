"""The international-registry emulator served on loopback for a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestServer

from adapters.international.emulator import Emulator, make_emulator_app


@asynccontextmanager
async def serving(token: str) -> AsyncIterator[tuple[Emulator, str]]:
    """An emulator that wants ``token``, and its URL."""
    emulator = Emulator(token=token)
    server = TestServer(make_emulator_app(emulator), host="127.0.0.1")
    await server.start_server()
    try:
        yield emulator, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
