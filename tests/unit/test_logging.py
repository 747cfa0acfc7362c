"""Logs never carry secrets, whatever a caller passes."""

from __future__ import annotations

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
