"""Moments as the contract writes them: RFC 3339 in UTC, with ``Z``."""

from __future__ import annotations

import datetime as dt


def utc_text(at: dt.datetime | float) -> str:
    """``2026-12-01T23:55:28.123456Z`` for an aware datetime or Unix seconds."""
    moment = dt.datetime.fromtimestamp(at, dt.UTC) if isinstance(at, float | int) else at
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def utc_now() -> str:
    return utc_text(dt.datetime.now(dt.UTC))
