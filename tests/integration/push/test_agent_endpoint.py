"""An `agent` endpoint: our agent in serve mode (`python -m worker --serve PORT`, a real
process) next to a ComfyUI simulator, the queue manager pushing jobs to it and the agent
reporting them over the worker API with each attempt's lease token."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from PIL import Image

from queue_manager.cli.redis_server import free_port
from queue_manager.contract.agent_api import TAKEN_PHASE
from queue_manager.core.endpoint_status import EndpointPhase
from queue_manager.core.events import Event, EventType
from queue_manager.core.ids import JobId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.service.fanout import Subscription
from tests.integration.push.conftest import Room
from tests.support.graphs import SAVE, sampler
from tests.support.jobs import user
from tests.support.paths import ROOT
from tests.support.simulator import serve_simulator
from tests.support.waiting import until
from worker.simulator.runtime import SimulatorConfig

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@dataclass
class Agents:
    """Serving agents as their image runs them; every one is killed at the end of the test."""

    room: Room
    token: str = field(default_factory=lambda: f"cwt.box.{secrets.token_urlsafe(24)}")
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def header(self) -> str:
        return f"Authorization: Bearer {self.token}"

    async def start(self, port: int, comfyui_url: str) -> asyncio.subprocess.Process:
        n = len(self.processes) + 1
        env = {
            **os.environ,
            "CW_WORKER_MANAGER_URL": self.room.qm_url,
            "CW_WORKER_TOKEN": self.token,
            "CW_WORKER_COMFYUI_URL": comfyui_url,
            "CW_WORKER_SERVE_HOST": "127.0.0.1",
            "CW_WORKER_HEARTBEAT_SECONDS": "0.3",
            "CW_WORKER_PROGRESS_INTERVAL_SECONDS": "0.05",
            "CW_WORKER_REQUEST_TIMEOUT_SECONDS": "10",
            "CW_WORKER_CLAIM_WAIT_SECONDS": "1",  # unused in serve mode; must suit the timeout
            "CW_WORKER_WORK_DIR": str(self.room.tmp / f"work-{n}"),
        }
        with (self.room.tmp / f"agent-{n}.log").open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker", "--serve", str(port), cwd=ROOT, env=env,
                stdout=log, stderr=log,
            )  # fmt: skip
        self.processes.append(proc)

        async def serving() -> bool:
            assert proc.returncode is None, (self.room.tmp / f"agent-{n}.log").read_text()
            return await healthy(port)

        await until(serving, 20, f"serving agent {n} on port {port}")
        return proc

    async def stop(self) -> None:
        for proc in self.processes:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
    except httpx.HTTPError:
        return False
    return r.status_code == 200


@pytest.fixture
async def agents(room: Room) -> AsyncIterator[Agents]:
    found = Agents(room)
    try:
        yield found
    finally:
        await found.stop()


async def events_until(events: Subscription, last: EventType, job: JobId) -> list[Event]:
    """The job's events up to `last` (waited for: the fan-out may trail the job's state)."""
    seen: list[Event] = []
    async with asyncio.timeout(10):
        while not seen or seen[-1].type is not last:
            event = await events.get()
            if event.job == job:
                seen.append(event)
    return seen


async def test_a_pushed_job_runs_on_the_agent_and_its_png_lands_in_the_users_folder(
    room: Room, agents: Agents
) -> None:
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig()) as sim:
        await agents.start(port, sim.url)
        await room.add("box", f"http://127.0.0.1:{port}", kind="agent", headers=(agents.header,))
        submitted = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await room.finished(submitted.id)
        assert job.status is JobStatus.COMPLETED, job.error
        assert (job.worker, job.attempts) == ("box.1", 1)
        assert [(o["filename"], o["subfolder"], o["type"]) for o in job.outputs] == [
            ("e2e_00001_.png", "t", "output")
        ]
        with Image.open(room.data / "outputs/user001/t/e2e_00001_.png") as img:
            assert img.size == (32, 24)
        await room.until_phase("box", EndpointPhase.READY)


async def test_progress_from_a_pushed_job_reaches_the_participant(
    room: Room, agents: Agents
) -> None:
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        await agents.start(port, sim.url)
        await room.add("box", f"http://127.0.0.1:{port}", kind="agent", headers=(agents.header,))
        with room.service.subscribe(user(1)) as events:
            submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=12))
            seen = await events_until(events, EventType.JOB_COMPLETED, submitted.id)
    kinds = [e.type for e in seen]
    assert EventType.JOB_STARTED in kinds
    assert EventType.JOB_PROGRESS in kinds
    assert EventType.JOB_PREVIEW in kinds
    assert kinds.index(EventType.JOB_EXECUTED) < kinds.index(EventType.JOB_COMPLETED)
    taken = [e for e in seen if e.type is EventType.JOB_PHASE]
    assert taken and taken[-1].data.get("detail") == TAKEN_PHASE
    assert kinds.index(EventType.JOB_PHASE) < kinds.index(EventType.JOB_STARTED)


async def test_a_killed_agents_job_is_requeued_and_finishes_on_its_replacement(
    room: Room, agents: Agents
) -> None:
    port = free_port()
    slow = SimulatorConfig(step_delay=0.1)
    async with (
        serve_simulator(room.tmp / "sim1", slow) as sim1,
        serve_simulator(room.tmp / "sim2", SimulatorConfig(step_delay=0.01)) as sim2,
    ):
        first = await agents.start(port, sim1.url)
        await room.add("box", f"http://127.0.0.1:{port}", kind="agent", headers=(agents.header,))
        submitted = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=60))

        async def sampling() -> bool:
            return (await room.job(submitted.id)).progress is not None

        await until(sampling, 20, "the job sampling on the first agent")
        first.kill()  # the replica is gone with its container: nothing is reported any more
        await first.wait()

        async def requeued() -> bool:
            return (await room.job(submitted.id)).attempts == 2

        await until(requeued, 20, "the job claimed again after its lease ran out")
        # The platform starts a replacement behind the same address (pushes are refused and
        # retried meanwhile, as during a cold start).
        await agents.start(port, sim2.url)
        job = await room.finished(submitted.id)
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.attempts == 2
    assert any("lease expired" in t.reason for t in job.timeline)
    assert [(o["filename"], o["subfolder"]) for o in job.outputs] == [("s_00001_.png", "")]
    assert sorted(p.name for p in (room.data / "outputs/user001").rglob("*.png")) == [
        "s_00001_.png"
    ]


async def test_a_busy_agent_gets_the_next_job_once_it_is_free(room: Room, agents: Agents) -> None:
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        await agents.start(port, sim.url)
        await room.add(
            "box", f"http://127.0.0.1:{port}", kind="agent", slots=2, headers=(agents.header,)
        )
        one = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=10))
        two = await room.service.submit(user(2), Lane.NORMAL, sampler(steps=10))
        first, second = await room.finished(one.id), await room.finished(two.id)
    assert (first.status, second.status) == (JobStatus.COMPLETED, JobStatus.COMPLETED)
    assert {first.worker, second.worker} == {"box.1", "box.2"}
    assert (first.attempts, second.attempts) == (1, 1)


async def test_a_cancelled_job_is_stopped_on_the_agent_which_then_takes_the_next(
    room: Room, agents: Agents
) -> None:
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.1)) as sim:
        await agents.start(port, sim.url)
        await room.add("box", f"http://127.0.0.1:{port}", kind="agent", headers=(agents.header,))
        long = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=300))

        async def sampling() -> bool:
            return (await room.job(long.id)).progress is not None

        await until(sampling, 20, "the long job sampling")
        await room.service.cancel(long.id, user(1))
        short = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await room.finished(short.id, timeout=15)
    assert job.status is JobStatus.COMPLETED, job.error
    assert (await room.job(long.id)).status is JobStatus.CANCELLED


async def test_a_job_past_its_timeout_fails_and_is_stopped_on_the_agent(
    room: Room, agents: Agents
) -> None:
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.1)) as sim:
        await agents.start(port, sim.url)
        url = f"http://127.0.0.1:{port}"
        await room.add("box", url, kind="agent", job_timeout=1.5, headers=(agents.header,))
        long = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=300))
        job = await room.finished(long.id, timeout=15)
        assert job.status is JobStatus.FAILED
        assert job.error is not None and job.error.type == "job_timeout", job.error
        short = await room.service.submit(user(1), Lane.NORMAL, SAVE)
        done = await room.finished(short.id, timeout=15)
    assert done.status is JobStatus.COMPLETED, done.error
    assert "interrupting" in (room.tmp / "agent-1.log").read_text()


async def test_a_wrong_push_token_is_refused_and_the_endpoint_shows_failing(
    room: Room, agents: Agents, caplog: pytest.LogCaptureFixture
) -> None:
    """It stays failing: the slot's probe while it fails shows the same wrong token, and the
    agent's open health check refuses a token that is not its own (it used to answer 200,
    and the endpoint flipped back to ready until the catalogue was refused again)."""
    caplog.set_level(logging.INFO, logger="queue_manager.push.slot")
    port = free_port()
    async with serve_simulator(room.tmp / "sim", SimulatorConfig()) as sim:
        await agents.start(port, sim.url)
        url = f"http://127.0.0.1:{port}"
        await room.add("box", url, kind="agent", headers=("Authorization: Bearer not-the-token",))
        await room.until_phase("box", EndpointPhase.FAILING)

        def probed() -> bool:
            return any("endpoint still failing" in r.getMessage() for r in caplog.records)

        await until(probed, 30, "the slot asking the failing endpoint")
        status = await room.status("box")
        assert status.phase is EndpointPhase.FAILING
        assert "401" in status.reason
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            wrong = {"Authorization": "Bearer not-the-token"}
            assert (await client.post("/jobs", json={}, headers=wrong)).status_code == 401
            assert (await client.get("/api/object_info", headers=wrong)).status_code == 401
            assert (await client.get("/healthz", headers=wrong)).status_code == 401
            assert (await client.get("/healthz")).status_code == 200  # a load balancer's check
            right = {"Authorization": f"Bearer {agents.token}"}
            assert (await client.get("/healthz", headers=right)).status_code == 200
            assert (await client.post("/jobs", json={}, headers=right)).status_code == 400
            assert (await client.get("/jobs/nope", headers=right)).status_code == 404
