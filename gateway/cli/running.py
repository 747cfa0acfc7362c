"""Running a long-lived command until the operator stops it."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..broker.topics import Topics, ensure_topics
from ..collector import settle_collector
from ..config import Settings


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run ``main(stop)``; SIGINT or SIGTERM sets ``stop`` so it can end cleanly."""
    settle_collector()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())
    return 0


async def configured_topics(settings: Settings, *, create: bool) -> Topics:
    """The topic names under the configured prefix, created first if asked."""
    topics = Topics(settings.topic_prefix)
    if create:
        await ensure_topics(
            settings.bootstrap_servers, topics.all(), settings.partitions, settings.replication
        )
    return topics


async def serve_http(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port``; the caller cleans the runner up."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
