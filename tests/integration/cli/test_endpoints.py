"""`comfy-workshop endpoint`: the operator's push endpoints command, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from queue_manager.cli.redis_server import RedisServer
from tests.integration.cli.up_process import start_up
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


@pytest.mark.slow
def test_up_adds_the_endpoints_it_is_given_in_the_same_spelling(tmp_path: Path) -> None:
    spec = "http://127.0.0.1:9/,slots=2,outputs=/mnt/out,header=X-Api-Key: s3cret,name=serverless"
    up = start_up(
        tmp_path / "data", tmp_path / "up.log", "--users", "1", "--workers", "0",
        "--endpoint", spec, "--endpoint", "http://127.0.0.1:10/",
    )  # fmt: skip
    try:
        r = httpx.get(
            f"{up.url}/admin/api/endpoints", auth=("instructor", up.passwords()["instructor"])
        )
        listed = {e["name"]: e for e in r.json()}
        assert set(listed) == {"serverless", "endpoint-2"}
        assert (listed["serverless"]["slots"], listed["serverless"]["outputs"]) == (2, "/mnt/out")
        assert "s3cret" not in r.text
    finally:
        assert up.stop() == 0, up.output()


def test_up_refuses_an_endpoint_it_cannot_read_and_says_why(tmp_path: Path) -> None:
    env = {**os.environ}
    refused = run_cli(env, "up", "--data", str(tmp_path), "--endpoint", "http://h:1,speed=fast")
    assert refused.returncode == 2
    assert "unknown endpoint option 'speed=fast'" in refused.stderr
    assert "Traceback" not in refused.stderr
