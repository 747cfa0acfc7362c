"""JSON lines: one event per line, in the models' JSON form; ``sequence`` may be omitted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TextIO

from gateway.publishing.sources import Draft, Problem, SourceItem


def read_jsonl(stream: TextIO) -> Iterator[SourceItem]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Problem(location, f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(fields, dict):
            yield Problem(location, f"expected a JSON object, got {type(fields).__name__}")
            continue
        yield Draft(location, fields, (location,))
