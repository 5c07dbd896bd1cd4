"""The GPU side as real processes a fault test can SIGKILL: the ComfyUI simulator and the
worker agent, started as `comfy-workshop up` starts them (`python -m worker.simulator`, `python
-m worker`: what `comfy-workshop simulator|worker` exec into, without the operator CLI's
imports first, which cost seconds on a busy two-core machine), their output kept in a log file
for the failure message, and never outliving the test (`gpu_side` kills whatever is left when
its block ends)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from queue_manager.cli.redis_server import free_port
from tests.support.paths import ROOT

START_TIMEOUT = 30.0


@dataclass
class Program:
    """One started process: what it is, and where its output goes."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    async def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would: no handler runs."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class GpuSide:
    """The simulators and agents one test started, in `tmp`."""

    tmp: Path
    programs: list[Program] = field(default_factory=list)

    async def simulator(
        self, name: str, port: int | None = None, step_delay: float = 0.05, *flags: str
    ) -> str:
        """The simulator on `port` (a free one if None), with `flags` (`--replicas 3`: a
        serverless endpoint); its URL once it answers. Its data folder is kept across
        restarts, as a GPU box's ComfyUI keeps its own."""
        port = port or free_port()
        argv = ["worker.simulator", "--port", str(port), "--data", str(self.tmp / name)]
        await self._start(name, [*argv, "--step-delay", str(step_delay), *flags], {})
        url = f"http://127.0.0.1:{port}"
        await _answers(f"{url}/system_stats", self.programs[-1])
        return url

    async def agent(self, name: str, manager: str, token: str, comfyui: str) -> Program:
        """The agent for the ComfyUI at `comfyui`, with quick heartbeats and
        quick reconnects (a fault test waits for them)."""
        env = {
            "CW_WORKER_MANAGER_URL": manager,
            "CW_WORKER_TOKEN": token,
            "CW_WORKER_COMFYUI_URL": comfyui,
            "CW_WORKER_NAME": name,
            "CW_WORKER_HEARTBEAT_SECONDS": "0.2",
            "CW_WORKER_CLAIM_WAIT_SECONDS": "1",
            "CW_WORKER_REQUEST_TIMEOUT_SECONDS": "10",
            "CW_WORKER_RECONNECT_MAX_SECONDS": "0.5",
            "CW_WORKER_PROGRESS_INTERVAL_SECONDS": "0.05",
            "CW_WORKER_WORK_DIR": str(self.tmp / f"work-{name}"),
        }
        return await self._start(name, ["worker"], env)

    async def _start(self, name: str, argv: list[str], env: dict[str, str]) -> Program:
        log = self.tmp / f"{name}.{len(self.programs)}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", *argv),
                cwd=ROOT,
                env={**os.environ, **env},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        program = Program(name, proc, log)
        self.programs.append(program)
        return program

    def logs(self) -> str:
        """Every program's output, for a failure message."""
        return "\n".join(
            f"--- {p.name} ({p.log.name})\n{p.output()[-3000:]}" for p in self.programs
        )

    async def stop(self) -> None:
        for program in self.programs:
            await program.kill()


@contextlib.asynccontextmanager
async def gpu_side(tmp: Path) -> AsyncIterator[GpuSide]:
    side = GpuSide(tmp)
    try:
        yield side
    finally:
        await side.stop()


async def _answers(url: str, program: Program) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if program.process.returncode is not None or loop.time() > deadline:
                raise AssertionError(f"{program.name} did not start:\n{program.output()}")
            await asyncio.sleep(0.05)
