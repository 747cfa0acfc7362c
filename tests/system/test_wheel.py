"""The product as a user installs it: a wheel, not the checkout.

`pip wheel --no-deps .` must hold no tooling (benchmarks, chaos, load generators), and
installed from it into a fresh virtual environment `crg up --once` works from an empty
folder (its samples, schemas and interface documents come from the package) and the
international-registry emulator serves its OpenAPI document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from gateway.streaming.local_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ("bench", "chaos", "loadgen", "processes")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, installed in a fresh venv; its bin folder."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder), "."],
        cwd=ROOT,
        check=True,
    )
    (wheel,) = folder.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = [n for n in names if n.endswith(".py")]
    assert not [n for n in shipped if n.startswith("ops/")], "the tooling is not in the wheel"
    assert not [n for n in shipped if any(t in Path(n).name for t in TOOLING)], shipped
    assert "gateway/resources/schemas/avro/registry-event.v1.avsc" in names
    assert "gateway/resources/samples/registry-exports/verra/transactions.csv" in names
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], check=True, timeout=600
    )
    return venv / "bin"


def test_crg_up_once_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRG_")}
    done = subprocess.run(
        [str(installed / "crg"), "up", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "149 events accepted, 0 rejected" in done.stdout
    assert "every published event verified end to end" in done.stdout
    assert (tmp_path / "data").is_dir()


def test_the_installed_emulator_serves_its_openapi_document(
    installed: Path, tmp_path: Path
) -> None:
    port = free_port()
    emulator = subprocess.Popen(
        [str(installed / "crg"), "emulator", "international", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json") as answer:
                    document = json.load(answer)
                break
            except OSError:
                assert emulator.poll() is None, emulator.stderr.read() if emulator.stderr else ""
                assert time.monotonic() < deadline, "the emulator did not answer"
                time.sleep(0.2)
        assert document["openapi"].startswith("3.")
        assert "/v1/parties/{party}/transfers" in document["paths"]
    finally:
        emulator.terminate()
        emulator.wait(10)
