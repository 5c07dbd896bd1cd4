"""`comfy-workshop users`: the operator's accounts command, in a subprocess."""

from __future__ import annotations

import os
import subprocess

from queue_manager.cli.redis_server import RedisServer
from tests.support.cli import run_cli


def test_operators_manage_accounts_from_the_command_line(
    redis_server: RedisServer, prefix: str
) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(env, "users", *args)

    added = cli("add", "user007")
    assert added.returncode == 0, added.stdout + added.stderr
    name, role, password = added.stdout.split()
    assert (name, role, len(password) >= 12) == ("user007", "participant", True)
    assert cli("add", "teacher", "--role", "instructor", "--password", "given-pass").returncode == 0
    assert cli("list").stdout.split() == ["teacher", "instructor", "user007", "participant"]
    assert cli("add", "user007").returncode == 1
    assert cli("reset", "user007").returncode == 0
    assert cli("remove", "user007").returncode == 0
    assert cli("list").stdout.split() == ["teacher", "instructor"]
