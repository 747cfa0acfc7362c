"""``crg chaos``: kill and pause components during a stream, then compare every store
with an undisturbed run's (see :mod:`gateway.chaos`)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("chaos", help="SIGKILL/SIGSTOP components during a stream, compare stores")
    p.add_argument("--events", type=int, default=4000, help="events in the stream")
    p.add_argument("--rounds", type=int, default=20, help="disruptions (one per round)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--within", type=float, default=600, help="seconds each run may take")
    p.set_defaults(handler=cmd_chaos)


def cmd_chaos(args: argparse.Namespace, settings: Settings) -> int:
    from ..chaos import run

    return 0 if asyncio.run(run(args.events, args.rounds, args.seed, args.within)) else 1
