"""Operator commands find the workshop of a data folder (`--data`, CW_DATA_DIR, ./data) by
themselves: `up`'s private Redis moves port at every start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from queue_manager.cli.redis_server import RedisServer
from tests.integration.cli.up_process import start_up


def _env(**extra: str) -> dict[str, str]:
    """The operator's shell: no CW_REDIS_URL or CW_DATA_DIR unless a test sets one."""
    base = {k: v for k, v in os.environ.items() if k not in ("CW_REDIS_URL", "CW_DATA_DIR")}
    return {**base, **extra}


def _cli(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queue_manager", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _refused(done: subprocess.CompletedProcess[str], folder: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        f"comfy-workshop: no workshop is running on {folder}: start it with `make run`, or "
        "give --data DIR / CW_REDIS_URL\n"
    )


def test_operator_commands_find_the_running_workshop_by_its_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = start_up(data, tmp_path / "up.log", "--users", "1", "--workers", "0")
    try:
        listed = _cli("users", "list", "--data", str(data), env=_env())
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == ["instructor", "instructor", "user001", "participant"]

        made = _cli("worker-token", "create", "x", env=_env(CW_DATA_DIR=str(data)))
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("cwt.x.")
        tokens = _cli("worker-token", "list", env=_env(), cwd=tmp_path)  # ./data by default
        assert tokens.stdout.split() == ["x"], tokens.stderr

        endpoints = _cli("endpoint", "list", "--data", str(data), env=_env())
        assert (endpoints.returncode, endpoints.stdout) == (0, ""), endpoints.stderr
    finally:
        assert up.stop() == 0
    # The folder's redis.conf still names the port, but nothing answers there any more.
    _refused(_cli("users", "list", "--data", str(data), env=_env()), str(data))
    _refused(_cli("worker-token", "list", env=_env(), cwd=tmp_path), "./data")


def test_with_no_workshop_running_the_operator_is_told_what_to_do(tmp_path: Path) -> None:
    _refused(_cli("users", "list", env=_env(), cwd=tmp_path), "./data")
    empty = tmp_path / "empty"
    _refused(_cli("worker-token", "create", "x", env=_env(CW_DATA_DIR=str(empty))), str(empty))
    _refused(_cli("endpoint", "list", "--data", str(empty), env=_env()), str(empty))
    assert not empty.exists()  # looking changes nothing


def test_a_redis_serving_another_folder_is_not_taken_for_the_workshop(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A stale redis.conf whose port another Redis took since: asked, that one says its folder."""
    folder = tmp_path / "data" / "redis"
    folder.mkdir(parents=True)
    (folder / "redis.conf").write_text(f"bind 127.0.0.1\nport {redis_server.port}\n")
    _refused(_cli("users", "list", env=_env(), cwd=tmp_path), "./data")


def test_an_explicit_redis_url_is_used_and_an_unreachable_one_is_named(
    tmp_path: Path, redis_server: RedisServer, prefix: str
) -> None:
    env = _env(CW_REDIS_URL=redis_server.url, CW_KEY_PREFIX=prefix)
    made = _cli("worker-token", "create", "gpu", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert _cli("worker-token", "list", env=env, cwd=tmp_path).stdout.split() == ["gpu"]

    gone = _cli("users", "list", env=_env(CW_REDIS_URL="redis://:pw@127.0.0.1:1/0"))
    assert gone.returncode == 1
    assert gone.stderr.startswith("comfy-workshop: no Redis answers at CW_REDIS_URL=")
    assert "pw" not in gone.stderr and "Traceback" not in gone.stderr
