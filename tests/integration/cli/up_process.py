"""`comfy-workshop up` as a real process for tests: started as a person starts it, its output in
a file, its children seen through /proc (read only; the tests only signal processes that this
`up` started)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from queue_manager.cli.redis_server import free_port

# A graph the simulator runs at once: an empty image, saved.
TINY_PROMPT = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "up"}},
}


T = TypeVar("T")


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something other than None/False, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


@dataclass(frozen=True)
class Proc:
    """A process seen in /proc; `starttime` tells it apart from a later one with the same pid.
    Two readings of one process are equal: its state (running, sleeping) is not compared."""

    pid: int
    ppid: int
    starttime: int
    state: str = field(compare=False)
    cmdline: tuple[str, ...]

    @staticmethod
    def read(pid: int) -> Proc | None:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return None
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        args = tuple(a.decode() for a in raw.split(b"\0") if a)
        return Proc(pid, int(fields[1]), int(fields[19]), fields[0], args)

    def alive(self) -> bool:
        """Still this process, and not a zombie waiting to be reaped."""
        now = Proc.read(self.pid)
        return now is not None and now.starttime == self.starttime and now.state != "Z"

    def is_(self, kind: str) -> bool:
        if kind == "redis-server":
            # Redis rewrites its title: "/usr/bin/redis-server 127.0.0.1:PORT".
            return bool(self.cmdline) and Path(self.cmdline[0].split()[0]).name == kind
        # "-m worker.simulator" for a simulator, "-m worker" for an agent
        return any(a == kind or a.endswith("." + kind) for a in self.cmdline)

    def port(self) -> int:
        return int(self.cmdline[self.cmdline.index("--port") + 1])


def children_of(pid: int) -> list[Proc]:
    procs = (Proc.read(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit())
    return [p for p in procs if p is not None and p.ppid == pid and p.state != "Z"]


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    url: str
    data: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def child(self, kind: str) -> Proc | None:
        return next((c for c in children_of(self.process.pid) if c.is_(kind)), None)

    def passwords(self) -> dict[str, str]:
        with (self.data / "credentials.csv").open() as fh:
            return {r["user"]: r["password"] for r in csv.DictReader(fh)}

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def run_job(self, user: str = "user001", timeout: float = 60) -> str:
        """Submit a tiny prompt as `user` (their ComfyUI API) and wait for it to finish."""
        auth = (user, self.passwords()[user])
        sent = httpx.post(
            f"{self.url}/{user}/api/prompt", json={"prompt": TINY_PROMPT}, auth=auth, timeout=10
        )
        assert sent.status_code == 200, sent.text
        job = sent.json()["prompt_id"]

        def finished() -> str | None:
            status = httpx.get(f"{self.url}/{user}/api/jobs/{job}", auth=auth, timeout=5)
            state = str(status.json()["status"])
            return state if state in ("completed", "failed", "cancelled") else None

        return wait_until(finished, timeout, f"job {job} to finish")

    def ctrl_c(self) -> None:
        """What a Ctrl-C in its terminal does: SIGINT to its process group (`own_group`)."""
        assert os.getpgid(self.process.pid) == self.process.pid, "started without own_group"
        os.killpg(self.process.pid, signal.SIGINT)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def launch_up(
    data: Path,
    log: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    own_group: bool = False,
) -> Up:
    """Start `comfy-workshop up` without waiting for it; `own_group`: in a process group of its
    own, as a terminal starts it (a Ctrl-C there reaches the whole group: `Up.ctrl_c`)."""
    port = port or free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "queue_manager",
                "up",
                "--port",
                str(port),
                "--data",
                str(data),
                "--step-delay",
                "0",
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=own_group,
        )
    return Up(process, f"http://127.0.0.1:{port}", data, log)


def start_up(
    data: Path,
    log: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    own_group: bool = False,
) -> Up:
    """Start `comfy-workshop up` and wait until it answers /readyz."""
    up = launch_up(data, log, *args, env=env, own_group=own_group)

    def ready() -> bool:
        assert up.process.poll() is None, f"up exited early:\n{up.output()}"
        return up.ready()

    try:
        wait_until(ready, timeout, "up to answer /readyz")
    except BaseException:
        up.stop()
        raise
    return up
