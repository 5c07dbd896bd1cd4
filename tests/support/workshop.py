"""A whole local workshop as `comfy-workshop up` starts it: private Redis, the queue manager,
simulated GPU workers, and the accounts it made (`credentials.csv`)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from queue_manager.cli.redis_server import free_port


@dataclass
class Workshop:
    url: str
    data: Path
    passwords: dict[str, str]
    log: Path


def start_workshop(
    data: Path,
    users: int = 2,
    workers: int = 1,
    step_delay: float = 0.0,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], Workshop]:
    port = free_port()
    log = data / "up.log"
    data.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "queue_manager",
                "up",
                "--port",
                str(port),
                "--data",
                str(data),
                "--users",
                str(users),
                "--workers",
                str(workers),
                "--step-delay",
                str(step_delay),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"comfy-workshop up did not start:\n{log.read_text()}")
        time.sleep(0.1)
    rows = csv.DictReader((data / "credentials.csv").open())
    passwords = {r["user"]: r["password"] for r in rows}
    return proc, Workshop(url, data, passwords, log)


def stop_workshop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
