"""`comfy-workshop endpoint`: the operator's push endpoints command, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess

from queue_manager.cli.redis_server import RedisServer
from tests.support.cli import run_cli


def test_operators_manage_endpoints_from_the_command_line(
    redis_server: RedisServer, prefix: str
) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(env, "endpoint", *args)

    added = cli(
        "add", "verda", "https://gpu.example", "--slots", "2", "--header", "X-Api-Key: s3cret"
    )
    assert added.returncode == 0, added.stdout + added.stderr
    assert "s3cret" not in added.stdout
    listed = [json.loads(line) for line in cli("list").stdout.splitlines()]
    assert [(e["name"], e["slots"], e["headers"]) for e in listed] == [
        ("verda", 2, {"X-Api-Key": "(hidden)"})
    ]
    wrong = cli("add", "gpu2", "not-a-url")
    assert wrong.returncode == 2 and "http(s) URL" in wrong.stdout
    assert "Traceback" not in wrong.stderr
    assert cli("remove", "verda").returncode == 0
    assert cli("remove", "verda").returncode == 1
    assert cli("list").stdout == ""
