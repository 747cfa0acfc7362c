"""Untrusted text on an operator's terminal: anyone who can write the raw topic chooses
the bytes of a rejected event's headers, ids and messages; printed raw, an escape
sequence would move the cursor, clear the screen or retitle the terminal."""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def shown(value: object) -> str:
    """``value`` as text with every control character (C0 but tab and line feed, DEL,
    C1, line separators, bidirectional overrides) written as ``\\xNN`` / ``\\uNNNN``."""
    text = value if isinstance(value, str) else str(value)

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNPRINTABLE.sub(escape, text)
