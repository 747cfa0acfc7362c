"""``crg gateway --processes N``: N gateway processes on one machine, members of one
consumer group over one ledger, started and watched by the parent.

Judging a batch holds the interpreter lock, so one gateway process uses about one core
however many threads it has; a second process judges other partitions on another core.
The members share the ledger as separate instances do (SQLite: each batch's transaction
waits for the write lock, so batches of different members never interleave; PostgreSQL:
concurrently). A member that exits unasked is restarted, as an operator's supervisor
would: after a PostgreSQL write conflict it judges its batch again against the committed
state. One that keeps failing stops them all, so the operator hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger("crg.gateway")

#: a member failing this often within the window stops the whole gateway
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
RESTART_DELAY_S = 1.0
STOP_GRACE_S = 30.0
PR_SET_PDEATHSIG = 1  # prctl(2)
#: set in each member's environment: its slot, which its log lines carry as ``member``
MEMBER_ENV = "CRG_GATEWAY_MEMBER"


class MembersFailed(Exception):
    """A member kept failing: the gateway stopped."""


@dataclass
class Members:
    """``count`` processes running ``command`` with ``env`` (each a single gateway)."""

    count: int
    command: list[str]
    env: Mapping[str, str]
    restart_delay: float = RESTART_DELAY_S
    running: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    restarts: deque[float] = field(default_factory=deque)
    started: asyncio.Event = field(default_factory=asyncio.Event)  # every member once

    async def _start(self, slot: int) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.command,
            env={**self.env, MEMBER_ENV: str(slot)},
            preexec_fn=_end_with_parent,
        )
        self.running[slot] = process
        log.info("gateway.member_started", member=slot, pid=process.pid)

    async def run(self, stop: asyncio.Event) -> None:
        """Start every member, restart those that exit unasked, stop them all when
        ``stop`` is set; raise :class:`MembersFailed` if one keeps failing."""
        for slot in range(self.count):
            await self._start(slot)
        self.started.set()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                exits = {asyncio.create_task(p.wait()): slot for slot, p in self.running.items()}
                done, _ = await asyncio.wait(
                    [stopping, *exits], return_when=asyncio.FIRST_COMPLETED
                )
                for task in exits:
                    task.cancel()
                if stop.is_set():
                    break
                for task in done & exits.keys():
                    await self._restart(exits[task], task.result(), stop)
        finally:
            stopping.cancel()
            await self.stop()

    async def _restart(self, slot: int, code: int, stop: asyncio.Event) -> None:
        pid = self.running[slot].pid
        log.warning("gateway.member_exited", member=slot, pid=pid, exit_code=code)
        now = time.monotonic()
        self.restarts.append(now)
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW_S:
            self.restarts.popleft()
        if len(self.restarts) > MAX_RESTARTS:
            raise MembersFailed(
                f"gateway members exited {len(self.restarts)} times within "
                f"{RESTART_WINDOW_S:.0f} s (last: member {slot}, exit code {code}); "
                "see the members' logs above"
            )
        await asyncio.sleep(self.restart_delay)
        if not stop.is_set():  # e.g. Ctrl-C reached the member before the parent
            await self._start(slot)

    async def stop(self) -> None:
        """SIGTERM each member (each finishes its batch and waits for its
        acknowledgements), SIGKILL any still running after the grace period."""
        for process in self.running.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        waits = [p.wait() for p in self.running.values()]
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await asyncio.gather(*waits)
        except TimeoutError:
            for process in self.running.values():
                if process.returncode is None:
                    log.warning("gateway.member_killed", pid=process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in self.running.values()))


# looked up before any fork: the child only calls it
_prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None


def _end_with_parent() -> None:
    """In a member, before it starts: be sent SIGTERM if the parent dies (even by
    SIGKILL), so no member outlives its gateway (Linux; elsewhere the parent's stop
    ends them)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def member_command() -> list[str]:
    """The command of one member: this interpreter running ``crg gateway``."""
    return [sys.executable, "-m", "gateway", "gateway"]


def member_env(settings_env: Mapping[str, str], metrics_dir: Path) -> dict[str, str]:
    """The parent's environment with the settings it resolved (its command line may have
    set them), one process per member, and the directory members write metrics to."""
    return {
        **os.environ,
        **settings_env,
        "CRG_GATEWAY_PROCESSES": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
