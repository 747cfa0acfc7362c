"""Logs never carry secrets, whatever a caller passes; each line is written whole."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from gateway.logging import REDACTED, configure_logging


def test_secret_fields_are_redacted_in_json_logs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    structlog.get_logger("t").info(
        "publish.start",
        private_key="-----BEGIN PRIVATE KEY-----abc",
        bearer_token="t0k",
        Authorization="Bearer x",
        key_id="verra-1",
        registry="verra",
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["private_key"] == REDACTED
    assert line["bearer_token"] == REDACTED
    assert line["Authorization"] == REDACTED
    assert line["key_id"] == "verra-1"
    assert line["event"] == "publish.start"


def test_level_filter(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "warning")
    structlog.get_logger("t").info("quiet")
    structlog.get_logger("t").warning("loud")
    err = capsys.readouterr().err
    assert "loud" in err and "quiet" not in err


class _Writes(io.StringIO):
    """A stream that remembers each ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes sharing an output (gateway members) interleave writes, not lines."""
    stream = _Writes()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("json", "info")
    for i in range(3):
        structlog.get_logger("t").info("gateway.verdict", n=i)
    assert len(stream.calls) == 3
    assert all(c.endswith("\n") and c.count("\n") == 1 for c in stream.calls)
    assert [json.loads(c)["n"] for c in stream.calls] == [0, 1, 2]
