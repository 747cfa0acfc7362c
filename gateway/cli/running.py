"""Running a long-lived command until the operator stops it."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from gateway.collector import settle_collector


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
