"""Long-lived commands run with the collector settled (see gateway.collector)."""

from __future__ import annotations

import subprocess
import sys

from gateway.collector import THRESHOLDS

PROGRAM = """
import gc
from gateway.cli.running import run_until_signalled

async def main(stop):
    print(gc.get_threshold(), gc.get_freeze_count() > 1000)

run_until_signalled(main)
"""


def test_a_long_lived_command_freezes_start_up_and_collects_less_often() -> None:
    # a process of its own: the settings are the interpreter's, not this test's
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.split("\n")[0] == f"{THRESHOLDS} True"
