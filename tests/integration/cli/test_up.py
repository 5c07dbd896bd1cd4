"""`comfy-workshop up` as a person runs it: it prints where it listens, serves, and stops every
process it started on SIGTERM."""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from queue_manager.cli.redis_server import RedisServer, free_port
from tests.support.cli import run_cli


def _wait_ready(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not become ready"
        time.sleep(0.05)


def _start_up(tmp_path: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], int]:
    """`comfy-workshop up` as a person starts it; returns it and its private Redis port."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "queue_manager",
            "up",
            "--port",
            str(port),
            "--data",
            str(tmp_path),
            "--step-delay",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    redis_port = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if match := re.search(r"private Redis on redis://127\.0\.0\.1:(\d+)/", line):
            redis_port = int(match.group(1))
        if "data folder:" in line:
            break
    assert redis_port, "no banner"
    _wait_ready(f"http://127.0.0.1:{port}/readyz")
    return proc, redis_port


def _stop_up(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    return rest


@pytest.mark.slow
@pytest.mark.timeout(300)  # starts, stops and restarts a whole workshop
def test_up_runs_a_whole_local_workshop_and_stops_everything(tmp_path: Path) -> None:
    import asyncio

    from queue_manager.core.ids import UserId
    from queue_manager.core.jobs import Lane
    from queue_manager.service.queue import QueueService
    from queue_manager.settings import Settings
    from queue_manager.store.connection import connect

    port = free_port()
    proc, redis_port = _start_up(tmp_path, port, "--users", "3", "--workers", "1")
    try:
        creds = tmp_path / "credentials.csv"
        assert oct(creds.stat().st_mode & 0o777) == "0o600"
        rows = list(csv.DictReader(creds.open()))
        assert [(r["user"], r["role"]) for r in rows] == [
            ("user001", "participant"),
            ("user002", "participant"),
            ("user003", "participant"),
            ("instructor", "instructor"),
        ]
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/me", timeout=5, auth=("user002", rows[1]["password"])
        )
        assert me.json() == {"name": "user002", "role": "participant"}
        assert (tmp_path / "redis" / "appendonlydir").is_dir()  # AOF in the data folder

        async def run_one_job() -> str:
            url = f"redis://127.0.0.1:{redis_port}/0"
            redis = connect(url)
            svc = QueueService(Settings(redis_url=url), redis)
            prompt = {
                "1": {
                    "class_type": "EmptyImage",
                    "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
                },
                "2": {
                    "class_type": "SaveImage",
                    "inputs": {"images": ["1", 0], "filename_prefix": "up"},
                },
            }
            owner = UserId("user001")
            job = await svc.submit(owner, Lane.NORMAL, prompt)
            for _ in range(600):
                status = (await svc.user_job(owner, job.id)).status.value
                if status in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.05)
            await redis.aclose()
            return status

        assert asyncio.run(run_one_job()) == "completed"
        assert (tmp_path / "outputs" / "user001" / "up_00001_.png").is_file()
    finally:
        rest = _stop_up(proc)
    assert "stopped the private Redis" in rest
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()

    # A second start reuses the accounts and their passwords.
    proc, _ = _start_up(tmp_path, port, "--users", "3", "--workers", "0")
    try:
        again = list(csv.DictReader((tmp_path / "credentials.csv").open()))
        assert again == rows
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/me", timeout=5, auth=("instructor", rows[3]["password"])
        )
        assert me.json()["role"] == "instructor"
    finally:
        _stop_up(proc)


def test_worker_tokens_are_created_listed_and_revoked_by_the_operator(
    redis_server: RedisServer, prefix: str
) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(env, "worker-token", *args)

    created = cli("create", "gpu-a")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("cwt.gpu-a.")
    assert cli("list").stdout.split() == ["gpu-a"]
    assert cli("create", "Bad Name").returncode == 2
    assert cli("revoke", "gpu-a").returncode == 0
    assert cli("list").stdout.split() == []
