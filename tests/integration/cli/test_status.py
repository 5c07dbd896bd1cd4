"""`comfy-workshop status` against real workshops: what it says, and its exit code (0 fine, 1
when something needs attention) that monitoring relies on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from queue_manager.cli.redis_server import RedisServer
from tests.integration.cli.up_process import TINY_PROMPT, start_up

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    """The operator's shell: no CW_REDIS_URL or CW_DATA_DIR unless a test sets one."""
    base = {k: v for k, v in os.environ.items() if k not in ("CW_REDIS_URL", "CW_DATA_DIR")}
    return {**base, **extra}


def _status(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "queue_manager", "status", *args],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    done = _status("--json", *args, env=env)
    assert done.stderr == "", done.stderr
    return done.returncode, json.loads(done.stdout)


def test_an_empty_workshop_is_fine_and_jobs_waiting_without_a_worker_need_attention(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    up = start_up(data, tmp_path / "up.log", "--users", "1", "--workers", "0")
    try:
        done = _status("--data", str(data))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Queue      0 waiting; 0 running" in done.stdout
        assert "Workers    none connected" in done.stdout
        assert "AOF on (last write ok, fsync everysec)" in done.stdout
        assert "Backup     never (make one: comfy-workshop backup)" in done.stdout
        assert "All good." in done.stdout

        auth = ("user001", up.passwords()["user001"])
        sent = httpx.post(
            f"{up.url}/user001/api/prompt", json={"prompt": TINY_PROMPT}, auth=auth, timeout=10
        )
        assert sent.status_code == 200, sent.text
        code, shown = _json("--data", str(data))
        assert code == 1
        assert shown["queue"]["waiting"] == 1 and shown["queue"]["waiting_users"] == 1
        assert shown["attention"][0].startswith("1 job(s) wait and no worker or endpoint")
    finally:
        assert up.stop() == 0


def test_a_connected_worker_is_shown_with_its_heartbeat(tmp_path: Path) -> None:
    data = tmp_path / "data"
    up = start_up(data, tmp_path / "up.log", "--users", "1", "--workers", "1")
    try:
        assert up.run_job() == "completed"
        code, shown = _json("--data", str(data))
        assert code == 0, shown
        assert [(w["name"], w["state"], w["job"]) for w in shown["workers"]] == [
            ("sim-1", "online", None)
        ]
        assert 0 <= shown["workers"][0]["heartbeat_age"] < 60
        assert shown["disk"]["parts"]["outputs"] > 0  # the job's image
    finally:
        assert up.stop() == 0


def test_aof_off_is_warned_and_the_last_backup_is_shown(
    tmp_path: Path, redis_server: RedisServer, prefix: str
) -> None:
    """The session's Redis runs without AOF (tests/conftest.py)."""
    env = _env(CW_REDIS_URL=redis_server.url, CW_KEY_PREFIX=prefix)
    (tmp_path / "data").mkdir()
    code, shown = _json("--data", str(tmp_path / "data"), env=env)
    assert code == 1
    assert shown["redis"]["aof_enabled"] is False
    assert any("AOF is OFF" in text for text in shown["attention"])
    assert shown["backup"] is None

    record = {
        "id": "2026-12-07T03-00-00Z",
        "finished_at": "2026-12-07T03:00:05+00:00",
        "target": "/backups",
        "bytes": 2048,
        "files": 3,
        "version": "0.1.0",
    }
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        client.set(f"{prefix}backup:last", json.dumps(record))
    finally:
        client.close()
    done = _status("--data", str(tmp_path / "data"), env=env)
    assert done.returncode == 1
    assert "Redis      UNREACHABLE" not in done.stdout
    assert "AOF OFF" in done.stdout
    assert "Backup     2026-12-07 03:00:05 UTC (" in done.stdout
    assert "to /backups: 2.0 kB, 3 file(s)" in done.stdout


def test_without_a_running_workshop_it_says_so_in_one_line_and_shows_the_disk(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "outputs" / "user001").mkdir(parents=True)
    (data / "outputs" / "user001" / "a.png").write_bytes(b"x" * 1500)
    done = _status("--data", str(data))
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    attention = [line for line in done.stdout.splitlines() if line.startswith("  ! ")]
    assert attention == [
        f"  ! Redis unreachable: no workshop is running on {data}: start it with `make run`, "
        "or give --data DIR / CW_REDIS_URL"
    ]
    assert "Disk       outputs 1.5 kB, inputs 0 B, userdata 0 B;" in done.stdout
