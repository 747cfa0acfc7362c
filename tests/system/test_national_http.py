"""The ITMO query API over a real loopback HTTP server, and the ``crg itmo`` commands."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.national.http import make_national_app
from adapters.national.store import NationalStore, open_national_store
from gateway.cli.main import main as crg
from gateway.streaming.local_broker import free_port
from ops.processes import trust_store
from tests.support.brokers import Broker
from tests.support.national import STORY, apply_all, events
from tests.support.openapi import documented, served


@pytest.fixture
async def client(ghana: NationalStore) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    apply_all(ghana, events("GH-1", STORY))
    async with TestClient(TestServer(make_national_app(ghana), host="127.0.0.1")) as c:
        yield c


async def test_list_filters_and_pages(client: TestClient) -> None:  # type: ignore[type-arg]
    page = await (await client.get("/v1/parties/GHA/itmos?limit=2")).json()
    assert [b["first_id"] for b in page["itmos"]] == [
        "CA0007-GHA01-GHA-1000-2024",
        "CA0007-GHA01-GHA-1400-2024",
    ]
    rest = await (await client.get("/v1/parties/gha/itmos", params={"after": page["next"]})).json()
    assert [(b["first_id"], b["quantity"], b["state"]) for b in rest["itmos"]] == [
        ("CA0007-GHA01-GHA-1500-2024", 500, "FIRST_TRANSFERRED")
    ]
    assert rest["next"] is None
    used = await (await client.get("/v1/parties/GHA/itmos?state=USED&vintage=2024")).json()
    assert [b["unit_first"] for b in used["itmos"]] == [1400]


async def test_history_of_one_itmo(client: TestClient) -> None:  # type: ignore[type-arg]
    answer = await client.get("/v1/parties/GHA/itmos/CA0007-GHA01-GHA-1200-2024")
    body = await answer.json()
    assert answer.status == 200
    assert [(a["action_type"], a["first_id"], a["last_id"]) for a in body["history"]] == [
        ("AUTHORIZATION", "CA0007-GHA01-GHA-1000-2024", "CA0007-GHA01-GHA-1999-2024"),
        ("FIRST_TRANSFER", "CA0007-GHA01-GHA-1000-2024", "CA0007-GHA01-GHA-1999-2024"),
        ("TRANSFER", "CA0007-GHA01-GHA-1000-2024", "CA0007-GHA01-GHA-1399-2024"),
    ]
    assert body["history"][1]["ca_party"] == "GHA" and body["history"][1]["ca_year"] == 2024


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/v1/parties/CHE/itmos", 404, "unknown_party"),
        ("/v1/parties/GHA/itmos?state=SOLD", 400, "bad_query"),
        ("/v1/parties/GHA/itmos?vintage=twenty", 400, "bad_query"),
        ("/v1/parties/GHA/itmos?limit=0", 400, "bad_query"),
        ("/v1/parties/GHA/itmos?since=yesterday", 400, "bad_query"),
        ("/v1/parties/GHA/itmos?after=%5B1", 400, "bad_query"),
        ("/v1/parties/GHA/itmos?colour=green", 400, "bad_query"),
        ("/v1/parties/GHA/itmos?cooperative_approach=C1", 400, "bad_query"),
        ("/v1/parties/GHA/itmos/not-an-itmo", 400, "bad_itmo_id"),
        ("/v1/parties/GHA/itmos/CA0007-GHA01-GHA-99999-2024", 404, "unknown_itmo"),
    ],
)
async def test_bad_requests_are_answered_not_crashed(
    client: TestClient,  # type: ignore[type-arg]
    path: str,
    status: int,
    error: str,
) -> None:
    answer = await client.get(path)
    assert answer.status == status
    assert (await answer.json())["error"] == error


async def test_digest_health_and_openapi(client: TestClient, ghana: NationalStore) -> None:  # type: ignore[type-arg]
    digest = await (await client.get("/v1/parties/GHA/digest")).json()
    assert digest == {"party": "GHA", "digest": ghana.digest(), "applied_events": 4, "actions": 4}
    assert (await client.get("/readyz")).status == 200
    spec = await (await client.get("/openapi.json")).json()
    assert served(client.app) == documented(spec)  # every route, and nothing else
    assert set(spec["paths"]) >= {
        "/v1/parties/{party}/itmos",
        "/v1/parties/{party}/itmos/{itmo_id}",
        "/v1/parties/{party}/digest",
    }


def test_itmo_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite://{tmp_path / 'gha.sqlite'}"
    store = open_national_store(url, "GHA")
    apply_all(store, events("GH-1", STORY))
    digest = store.digest()
    store.close()
    base = ["--data-dir", str(tmp_path)]

    assert crg([*base, "itmo", "list", "--party", "gha", "--store", url, "--state", "USED"]) == 0
    out = capsys.readouterr().out
    assert "CA0007-GHA01-GHA-1400-2024" in out and "1 block(s)" in out

    assert crg([*base, "itmo", "show", "--party", "GHA", "--store", url,
                "CA0007-GHA01-GHA-1450-2024"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["AUTHORIZATION", "FIRST_TRANSFER", "USE_OIMP"]
    assert "corresponding adjustment: GHA ADD for 2024" in lines[1]

    assert crg([*base, "itmo", "digest", "--party", "GHA", "--store", url]) == 0
    assert capsys.readouterr().out.split()[0] == digest

    out_dir = tmp_path / "aef"
    assert crg([*base, "itmo", "aef", "--party", "GHA", "--store", url, "--year", "2026",
                "--out", str(out_dir)]) == 0  # fmt: skip
    assert "4 actions" in capsys.readouterr().out
    with (out_dir / "Table_3_Actions.csv").open(encoding="utf-8") as f:
        assert len(list(csv.reader(f))) == 5

    assert crg([*base, "itmo", "list", "--party", "GHA", "--store", url, "--limit", "x"]) == 2
    assert "whole numbers" in capsys.readouterr().err
    assert crg([*base, "itmo", "show", "--party", "GHA", "--store", url, "CA1-x"]) == 2
    with pytest.raises(SystemExit):
        crg([*base, "itmo", "list", "--party", "XXX"])


def test_the_adapter_command_serves_and_stops_cleanly(tmp_path: Path, broker: Broker) -> None:
    """``crg adapter national`` as operators run it: answers /readyz, then SIGTERM ends
    it with status 0."""
    port = free_port()
    trust_store(tmp_path, [], parties=["GHA"])  # the Party's key, which signs its actions
    env = {**os.environ, "CRG_TOPIC_PREFIX": f"nat{os.getpid()}", "CRG_LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--data-dir", str(tmp_path), "--bootstrap-servers",
         broker.bootstrap_servers, "adapter", "national", "--party", "GHA", "--create-topics",
         "--http", "--http-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = r.status
                    break
            except OSError:
                time.sleep(0.3)
        assert ready == 200, process.stderr.read() if process.poll() is not None else "no answer"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/parties/GHA/itmos") as r:
            assert json.load(r) == {"party": "GHA", "itmos": [], "next": None}
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert (tmp_path / "national" / "GHA.sqlite").exists()
