"""`comfy-workshop up` as a person runs it: it prints where it listens, serves, and stops every
process it started on SIGTERM."""

from __future__ import annotations

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

from queue_manager.redis_server import RedisServer, free_port


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


@pytest.mark.slow
def test_up_serves_and_stops_its_private_redis(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "queue_manager", "up", "--port", str(port), "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    try:
        banner = [proc.stdout.readline() for _ in range(3)]
        assert f"http://127.0.0.1:{port}/" in banner[0]
        match = re.search(r"private Redis on redis://127\.0\.0\.1:(\d+)/", banner[1])
        assert match, banner
        redis_port = int(match.group(1))
        _wait_ready(f"http://127.0.0.1:{port}/readyz")
        assert (tmp_path / "redis" / "appendonlydir").is_dir()  # AOF in the data folder
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, rest
    assert "stopped the private Redis" in rest
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()


def test_worker_tokens_are_created_listed_and_revoked_by_the_operator(
    redis_server: RedisServer, prefix: str
) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "queue_manager", "worker-token", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    created = cli("create", "gpu-a")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("cwt.gpu-a.")
    assert cli("list").stdout.split() == ["gpu-a"]
    assert cli("create", "Bad Name").returncode == 2
    assert cli("revoke", "gpu-a").returncode == 0
    assert cli("list").stdout.split() == []
