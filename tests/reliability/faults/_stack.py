"""Real processes for the fault tests, each started by the test and stopped in its `finally`:
a private redis-server, queue managers (`comfy-workshop serve`), ComfyUI simulators and worker
agents. Children die with the test process (the parent-death signal of `cli.children.Program`);
a test kills them for real (SIGKILL) and starts them again with the same ports and folders."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from queue_manager.cli.children import Program
from queue_manager.cli.redis_server import RedisServer, free_port
from queue_manager.cli.roster import ensure_roster, read_credentials
from queue_manager.core.jobs import JobStatus
from queue_manager.store.accounts import AccountStore
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from tests.reliability.support.invariants import Accepted, RoomView
from tests.support.waiting import until

PREFIX = "cw:"
# Every manager signs cookies with the same secret: a login outlives a restart and holds on
# either of two managers, as it does behind one address in production.
SECRET = "fault-suite-session-secret-not-a-placeholder"
STEP_DELAY = 0.03  # simulated seconds per sampler step: a job runs for a few tenths


@dataclass
class Manager:
    """One `comfy-workshop serve` process; restarted on the same port (agents and pages keep
    its address)."""

    program: Program
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.program.start()
        await until(self._ready, 60, f"the queue manager on {self.url} to answer /readyz")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to sockets or long polls."""
        self.program.kill()

    def output(self) -> str:
        return self.program.log_path.read_text(errors="replace")

    async def _ready(self) -> bool:
        code = self.program.exit_code()
        assert code is None, f"queue manager exited ({code}):\n{self.output()[-3000:]}"
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{self.url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class Stack:
    """A private Redis, queue managers on it, and GPU workers (simulator + agent) pointed at
    them; the accounts are in `data/credentials.csv` as `up` writes it."""

    root: Path
    redis: RedisServer
    managers: list[Manager] = field(default_factory=list)
    programs: list[Program] = field(default_factory=list)  # simulators and agents

    @property
    def data(self) -> Path:
        return self.root / "data"

    def passwords(self) -> dict[str, str]:
        rows = read_credentials(self.data / "credentials.csv")
        return {name: password for name, (_, password) in rows.items()}

    @contextlib.asynccontextmanager
    async def room(self) -> AsyncIterator[RoomView]:
        client = connect(self.redis.url)
        try:
            yield RoomView(client, PREFIX, self.data)
        finally:
            await client.aclose()

    def logs(self) -> str:
        """Every process's log, for a failure message."""
        parts = [f"--- {p.log_path.name}\n{tail(p.log_path)}" for p in self._all()]
        return "\n".join(parts)

    def _all(self) -> list[Program]:
        return [m.program for m in self.managers] + self.programs

    def stop(self) -> None:
        """Agents and simulators first (an agent says goodbye to its manager), then the
        managers, then Redis."""
        _stop(self.programs)
        _stop([m.program for m in self.managers])
        self.redis.stop()


def _stop(programs: list[Program]) -> None:
    for program in programs:
        program.terminate()
    deadline = time.monotonic() + 15
    for program in programs:
        while program.exit_code() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        program.kill()


async def under_way(room: RoomView, jobs: Sequence[Accepted]) -> bool:
    """A burst in full swing: jobs done, both GPUs busy, more waiting (in our queue, or
    handed to a GPU early: waiting in its ComfyUI's queue, and running for ours)."""
    found = [await room.job(a.job_id) for a in jobs]
    states = [j.status for j in found if j is not None]
    return (
        states.count(JobStatus.COMPLETED) >= 1
        and states.count(JobStatus.RUNNING) >= 2
        and states.count(JobStatus.RUNNING) + states.count(JobStatus.QUEUED) >= 4
    )


def tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


@contextlib.asynccontextmanager
async def running_stack(
    root: Path,
    *,
    users: int,
    managers: int = 1,
    workers_on: tuple[int, ...] = (0, 0),
    settings: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """Start everything; `workers_on[i]` names the manager worker i's agent talks to;
    `settings`: more CW_ variables for the managers."""
    redis = RedisServer(root / "redis", appendonly=False, owner="a fault test")
    stack = Stack(root, redis)
    try:
        redis.start()
        await _make_accounts(stack, users)
        tokens = {f"sim-{i + 1}": f"fault-suite-token-{i + 1:04d}" for i in range(len(workers_on))}
        for _ in range(managers):
            stack.managers.append(_manager(stack, tokens, settings or {}))
        for i, target in enumerate(workers_on):
            name = f"sim-{i + 1}"
            token = f"cwt.{name}.{tokens[name]}"
            stack.programs += _worker(stack, i + 1, stack.managers[target].url, token)
        # All at once (each Python process takes seconds to start here); an agent that is
        # up before its manager retries until it answers.
        for program in stack.programs:
            program.start()
        await asyncio.gather(*(manager.start() for manager in stack.managers))
        yield stack
    finally:
        stack.stop()


async def _make_accounts(stack: Stack, users: int) -> None:
    client = connect(stack.redis.url)
    try:
        await ensure_roster(
            AccountStore(client, Keys(PREFIX)), stack.data / "credentials.csv", users
        )
    finally:
        await client.aclose()


def _manager(stack: Stack, tokens: dict[str, str], settings: dict[str, str]) -> Manager:
    port = free_port()
    env = {
        "CW_REDIS_URL": stack.redis.url,
        "CW_KEY_PREFIX": PREFIX,
        "CW_SECRET_KEY": SECRET,
        "CW_WORKER_TOKENS": ",".join(f"{k}:{v}" for k, v in tokens.items()),
        "CW_MAX_QUEUED_PER_USER": "100",
        "CW_MAX_RUNNING_PER_USER": "1",
        **settings,
    }
    args = [sys.executable, "-m", "queue_manager", "serve", "--port", str(port)]
    args += ["--data", str(stack.data)]
    log = stack.root / "logs" / f"manager-{len(stack.managers) + 1}.log"
    return Manager(Program(args, env, log), port)


def _worker(stack: Stack, n: int, manager: str, token: str) -> list[Program]:
    """A ComfyUI simulator and the agent next to it (not started yet)."""
    port = free_port()
    logs = stack.root / "logs"
    simulator = [sys.executable, "-m", "worker.simulator", "--port", str(port)]
    simulator += ["--data", str(stack.root / f"sim-{n}"), "--step-delay", str(STEP_DELAY)]
    env = {
        "CW_WORKER_MANAGER_URL": manager,
        "CW_WORKER_TOKEN": token,
        "CW_WORKER_COMFYUI_URL": f"http://127.0.0.1:{port}",
        "CW_WORKER_WORK_DIR": str(stack.root / f"agent-{n}"),
        # A restarted manager is found again within a second or two, not after 30 s.
        "CW_WORKER_RECONNECT_MAX_SECONDS": "1",
    }
    return [
        Program(simulator, {}, logs / f"simulator-{n}.log"),
        Program([sys.executable, "-m", "worker"], env, logs / f"agent-{n}.log"),
    ]
