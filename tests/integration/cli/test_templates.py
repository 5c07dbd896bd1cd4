"""`comfy-workshop templates`: the Templates browser's mode and check, in a subprocess."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from queue_manager.cli.redis_server import RedisServer
from tests.support.cli import run_cli


def test_operators_set_and_read_the_templates_mode(redis_server: RedisServer, prefix: str) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(env, "templates", *args)

    shown = cli("mode")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.startswith("templates: mark (")
    assert cli("mode", "hide").returncode == 0
    assert cli("mode").stdout.startswith("templates: hide (only the official templates the GPUs")
    wrong = cli("mode", "sometimes")
    assert wrong.returncode == 2 and "invalid choice: 'sometimes'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert cli("mode").stdout.startswith("templates: hide")
    misused = cli("check", "off")
    assert misused.returncode == 2 and "takes no mode" in misused.stdout
    checked = cli("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no GPU has reported yet" in checked.stdout
    # Partner-API templates are named whatever the GPUs have.
    assert "Comfy.org's paid API" in checked.stdout


def test_with_no_workshop_running_it_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    done = run_cli(env, "templates", "mode", "off", "--data", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().startswith("comfy-workshop: no workshop is running on")
    assert "Traceback" not in done.stderr
