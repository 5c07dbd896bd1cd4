"""`comfy-workshop up` supervises what it starts: what dies is restarted, nothing outlives it
(even when it is SIGKILLed), and one data folder is served by one `up` at a time."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.cli.up_process import Proc, Up, children_of, launch_up, start_up, wait_until

pytestmark = pytest.mark.slow


def restarted(up: Up, kind: str, old: Proc) -> Proc | None:
    new = up.child(kind)
    return new if new is not None and new.pid != old.pid else None


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def kill_leftovers(procs: list[Proc]) -> None:
    """Clean-up after a failure: only processes this test's `up` started (same start time)."""
    for proc in procs:
        if proc.alive():
            os.kill(proc.pid, signal.SIGKILL)


def test_a_killed_redis_is_restarted_and_jobs_run_again(tmp_path: Path) -> None:
    up = start_up(tmp_path / "data", tmp_path / "up.log", "--users", "1", "--workers", "1")
    try:
        redis = wait_until(lambda: up.child("redis-server"), 10, "up's redis-server")
        os.kill(redis.pid, signal.SIGKILL)
        new = wait_until(lambda: restarted(up, "redis-server", redis), 20, "a new redis-server")
        wait_until(up.ready, 30, "/readyz to answer 200 again")
        assert up.run_job() == "completed"
        log = up.output()
        assert f"redis-server (pid {redis.pid}) was killed by SIGKILL" in log, log
        assert f"restarted redis-server (pid {new.pid})" in log, log
    finally:
        assert up.stop() == 0, up.output()


def test_a_killed_simulator_is_restarted_and_the_restart_is_logged(tmp_path: Path) -> None:
    up = start_up(tmp_path / "data", tmp_path / "up.log", "--users", "1", "--workers", "1")
    try:
        sim = wait_until(lambda: up.child("simulator"), 10, "up's simulator")
        os.kill(sim.pid, signal.SIGKILL)
        new = wait_until(lambda: restarted(up, "simulator", sim), 20, "a new simulator")
        assert new.port() == sim.port()  # its agent still knows where it is
        wait_until(lambda: answers(new.port()), 20, "the new simulator to listen")
        log = up.output()
        assert f"simulator-1 (pid {sim.pid}) was killed by SIGKILL; restarting in" in log, log
        assert f"restarted simulator-1 (pid {new.pid})" in log, log
        assert up.run_job() == "completed"
    finally:
        assert up.stop() == 0, up.output()


def test_nothing_up_started_outlives_it_when_it_is_sigkilled(tmp_path: Path) -> None:
    up = start_up(tmp_path / "data", tmp_path / "up.log", "--users", "1", "--workers", "2")
    children: list[Proc] = []
    try:
        # Redis, and a simulator and an agent per worker.
        children = wait_until(
            lambda: (found := children_of(up.process.pid)) and len(found) == 5 and found,
            20,
            "up's five children",
        )
        up.process.kill()
        up.process.wait(10)
        wait_until(
            lambda: not any(c.alive() for c in children),
            15,
            f"every child to die: {[(c.pid, c.cmdline) for c in children if c.alive()]}",
        )
    finally:
        up.stop()
        kill_leftovers(children)


def test_ctrl_c_stops_everything_without_a_traceback(tmp_path: Path) -> None:
    up = start_up(tmp_path / "data", tmp_path / "up.log", "--users", "1", "--workers", "1")
    children = children_of(up.process.pid)
    try:
        # Once its worker has joined, the agent is in a long poll: the case that must not end
        # in an error (a poll cut short by the server's shutdown is logged with a traceback).
        wait_until(lambda: "worker joined" in up.output(), 30, "the worker to join")
        up.process.send_signal(signal.SIGINT)
        assert up.process.wait(60) == 0
        assert "Traceback" not in up.output(), up.output()
        assert not any(c.alive() for c in children)  # up waits for each before it exits
    finally:
        up.stop()
        kill_leftovers(children)


def remote_worker_token(up: Up, name: str) -> str:
    """A token for a worker `up` did not start, made as the operator makes one."""
    port = re.search(r"private Redis on redis://127\.0\.0\.1:(\d+)/", up.output())
    assert port, up.output()
    env = {**os.environ, "CW_REDIS_URL": f"redis://127.0.0.1:{port.group(1)}/0"}
    made = subprocess.run(
        [sys.executable, "-m", "queue_manager", "worker-token", "create", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_ctrl_c_ends_a_remote_workers_long_poll_without_a_traceback(tmp_path: Path) -> None:
    up = start_up(tmp_path / "data", tmp_path / "up.log", "--users", "1", "--workers", "0")
    try:
        auth = {"Authorization": f"Bearer {remote_worker_token(up, 'remote-gpu')}"}
        joined = httpx.post(
            f"{up.url}/worker/v1/register", json={"node_types": ["SaveImage"]}, headers=auth
        )
        assert joined.status_code == 204, joined.text
        with ThreadPoolExecutor(1) as pool:
            poll = pool.submit(
                httpx.post, f"{up.url}/worker/v1/claim?wait=25", headers=auth, timeout=30
            )
            assert up.ready()  # answered after the poll was sent: the poll is in the server
            up.process.send_signal(signal.SIGINT)
            # Told at once that its claim is over, not cut off after the graceful timeout.
            assert poll.result(timeout=30).status_code == 499
        assert up.process.wait(60) == 0
        assert "Traceback" not in up.output(), up.output()
    finally:
        up.stop()


def test_a_second_up_on_the_same_data_folder_refuses_and_the_first_keeps_working(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = start_up(data, tmp_path / "first.log", "--users", "1", "--workers", "1")
    second = None
    try:
        redis = wait_until(lambda: first.child("redis-server"), 10, "up's redis-server")
        second = launch_up(data, tmp_path / "second.log", "--users", "1", "--workers", "0")
        code = wait_until(lambda: second.process.poll(), 30, "the second up to give up")
        said = second.output()
        assert code != 0
        assert f"{data / 'redis'} is in use by comfy-workshop up (pid {first.process.pid}" in said
        assert "Traceback" not in said, said
        assert first.child("redis-server") == redis
        assert first.run_job() == "completed"
    finally:
        if second is not None:
            second.stop()
        assert first.stop() == 0, first.output()
