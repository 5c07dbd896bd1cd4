"""`python -m worker.simulator --replicas N ...` as an operator runs it: a serverless simulator
on one port until SIGTERM, and the flags it refuses."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from queue_manager.cli.redis_server import free_port
from tests.support.waiting import until
from worker.simulator.serve import main

pytestmark = pytest.mark.slow


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "worker.simulator", "--port", str(port)),
        *("--data", str(tmp_path / "sim"), "--replicas", "2", "--cold-start", "0.2"),
        *("--idle-stop", "30", "--shared-outputs", str(tmp_path / "out")),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_replicas_serve_on_one_port_until_sigterm(
    started: tuple[asyncio.subprocess.Process, str],
) -> None:
    proc, url = started
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def answering() -> bool:
            try:
                return (await http.get("/_sim/replicas")).status_code == 200
            except httpx.TransportError:
                assert proc.returncode is None, "the simulator exited"
                return False

        await until(answering, what="the balancer answering")
        stats = await http.get("/system_stats")  # held through replica 0's cold start
        report = (await http.get("/_sim/replicas")).json()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 20)
    assert proc.stderr is not None
    errors = (await proc.stderr.read()).decode()

    assert stats.status_code == 200
    assert [r["state"] for r in report["replicas"]] == ["warm", "cold"]
    assert code == 0, errors
    assert "Traceback" not in errors


@pytest.mark.parametrize(
    "argv",
    [
        ["--cold-start", "1"],  # a balanced-only flag without --replicas
        ["--replicas", "2", "--api-key", "k"],  # a key for the ComfyUI balancer
        ["--api", "runpod"],  # RunPod's API without a key
        ["--replicas", "0"],
    ],
)
def test_flags_that_do_not_fit_together_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(argv)

    assert refused.value.code == 2
    assert "error:" in capsys.readouterr().err
