"""Running `comfy-workshop` as an operator does, in a subprocess, for tests."""

from __future__ import annotations

import subprocess
import sys


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queue_manager", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
