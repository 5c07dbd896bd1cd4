"""The worker agent end to end: a real Redis, the queue manager and a ComfyUI simulator over
real HTTP and WebSockets, the agent in-process or as its own process (for SIGKILL/SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from redis.asyncio import Redis

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.contract.worker_api import NEXT_ON_GPU_PHASE
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Job, JobStatus, Lane
from queue_manager.service.queue import QueueService
from tests.support.graphs import SAVE, sampler
from tests.support.jobs import in_claim, user
from tests.support.paths import ROOT
from tests.support.servers import serve
from tests.support.settings import make_settings
from tests.support.simulator import RunningSimulator, serve_simulator
from tests.support.waiting import until
from worker.agent import Agent
from worker.comfy_client import ComfyClient
from worker.manager_client import Assignment, ManagerClient
from worker.settings import WorkerSettings
from worker.simulator.runtime import SimulatorConfig

OWNER = user(1)  # whose jobs these are, unless a test says otherwise

INSTRUCTOR = UserId("instructor")


@dataclass
class Claims:
    """How each claim of an in-process agent ended, numbered in the order they began: "job",
    "nothing" (the long poll ran out: 204) or the name of the error that refused it."""

    begun: int = 0
    ended: list[tuple[int, str]] = field(default_factory=list)

    def watch(self, manager: ManagerClient) -> None:
        real = manager.claim

        async def claim() -> Assignment | None:
            self.begun += 1
            number = self.begun
            try:
                got = await real()
            except Exception as exc:
                self.ended.append((number, type(exc).__name__))
                raise
            self.ended.append((number, "nothing" if got is None else "job"))
            return got

        manager.claim = claim  # type: ignore[method-assign]

    def mark(self) -> int:
        """A point in time: claims that begin later are "after" it."""
        return self.begun

    def after(self, mark: int) -> list[str]:
        """How the claims that began after `mark` ended, so far."""
        return [outcome for number, outcome in self.ended if number > mark]


@dataclass
class Stack:
    qm_url: str
    service: QueueService
    data: Path
    sim: RunningSimulator
    tokens: Any
    tmp: Path
    claims: dict[str, Claims] = field(default_factory=dict)
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def worker_settings(self, name: str, claim_wait: float = 1.0) -> WorkerSettings:
        token = await self.tokens.create(WorkerId(name))
        return WorkerSettings(
            manager_url=self.qm_url,  # type: ignore[arg-type]
            token=token,  # type: ignore[arg-type]
            comfyui_url=self.sim.url,  # type: ignore[arg-type]
            name=name,
            heartbeat_seconds=0.2,
            claim_wait_seconds=claim_wait,
            prefetch=1,  # the next job waits in ComfyUI's queue (one GPU)
            request_timeout_seconds=10.0,
            progress_interval_seconds=0.05,
            work_dir=self.tmp / f"work-{name}",
        )

    @contextlib.asynccontextmanager
    async def agent(self, name: str = "gpu1", claim_wait: float = 1.0) -> AsyncIterator[Agent]:
        settings = await self.worker_settings(name, claim_wait)
        manager = ManagerClient(settings)
        self.claims[name] = Claims()
        self.claims[name].watch(manager)
        comfy = ComfyClient(settings.comfyui_url.unicode_string(), 10.0)
        agent = Agent(settings, manager, comfy)
        task = asyncio.create_task(agent.run())
        try:
            await until(lambda: self._registered(name))
            yield agent
        finally:
            agent.drain()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
            await manager.aclose()
            await comfy.aclose()

    async def _registered(self, name: str) -> bool:
        return any(w.id == name for w in await self.service.gpu_workers())

    async def process_agent(self, name: str, *, logs: bool = False) -> asyncio.subprocess.Process:
        """`python -m worker` as an operator runs it (stderr kept with `logs`); killed at the
        end of the test whatever happened."""
        s = await self.worker_settings(name)
        env = {
            **os.environ,
            "CW_WORKER_MANAGER_URL": self.qm_url,
            "CW_WORKER_TOKEN": s.token.get_secret_value(),
            "CW_WORKER_COMFYUI_URL": self.sim.url,
            "CW_WORKER_NAME": name,
            "CW_WORKER_HEARTBEAT_SECONDS": "0.2",
            "CW_WORKER_PREFETCH": "1",
            "CW_WORKER_CLAIM_WAIT_SECONDS": "1",
            "CW_WORKER_REQUEST_TIMEOUT_SECONDS": "10",
            "CW_WORKER_WORK_DIR": str(self.tmp / f"work-{name}"),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE if logs else asyncio.subprocess.DEVNULL,
        )
        self.processes.append(proc)
        await until(lambda: self._registered(name))
        return proc

    async def stop_processes(self) -> None:
        for proc in self.processes:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def job(self, job_id: JobId, owner: UserId = OWNER) -> Job:
        return await self.service.user_job(owner, job_id)

    async def finished(self, job_id: JobId, timeout: float = 30, owner: UserId = OWNER) -> Job:
        async def done() -> bool:
            return (await self.job(job_id, owner)).status.is_final

        await until(done, timeout)
        return await self.job(job_id, owner)


def agent_warnings(caplog: pytest.LogCaptureFixture, text: str) -> int:
    """How many of the in-process agent's WARNING lines so far contain `text`."""
    return sum(r.name == "worker.agent" and text in r.getMessage() for r in caplog.records)


@pytest.fixture
async def stack(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = make_settings(
        redis_server,
        prefix,
        data_dir=tmp_path / "data",
        lease_seconds=1.5,
        heartbeat_seconds=0.3,
        worker_timeout_seconds=2,
    )
    app = create_app(settings)
    config = SimulatorConfig(step_delay=0.05)
    async with serve(app) as url, serve_simulator(tmp_path / "sim", config) as sim:
        stack = Stack(url, app.state.service, tmp_path / "data", sim, app.state.tokens, tmp_path)
        try:
            yield stack
        finally:
            await stack.stop_processes()


async def test_a_job_runs_on_the_simulator_and_its_png_lands_in_the_users_folder(
    stack: Stack,
) -> None:
    async with stack.agent():
        submitted = await stack.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await stack.finished(submitted.id)
    assert job.status is JobStatus.COMPLETED, job.error
    assert [(o["filename"], o["subfolder"], o["type"]) for o in job.outputs] == [
        ("e2e_00001_.png", "t", "output")
    ]
    png = stack.data / "outputs/user001/t/e2e_00001_.png"
    with Image.open(png) as img:
        assert img.size == (32, 24)
    assert not (stack.data / "outputs/user002").exists()


async def test_progress_of_a_sampler_is_relayed_coalesced(stack: Stack) -> None:
    async with stack.agent():
        with stack.service.subscribe(user(1)) as events:
            submitted = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=12))
            job = await stack.finished(submitted.id)
            kinds = []
            while events.pending():
                kinds.append((await events.get()).type)
    assert job.status is JobStatus.COMPLETED, job.error
    assert "job.started" in kinds
    assert "job.executed" in kinds
    assert 1 <= kinds.count("job.progress") <= 12
    assert 1 <= kinds.count("job.preview") <= 12
    assert await stack.service.job_preview(submitted.id) is None  # dropped when finished


async def test_cancelling_a_running_job_interrupts_it_on_comfyui(stack: Stack) -> None:
    async with stack.agent():
        submitted = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=200))

        async def sampling() -> bool:
            return bool(stack.sim.sim.state.running)

        await until(sampling)
        await stack.service.cancel(submitted.id, INSTRUCTOR)

        async def interrupted() -> bool:
            done = stack.sim.sim.state.history.get(submitted.id)
            return done is not None and done.outcome == "interrupted"

        await until(interrupted, 10)
    assert (await stack.job(submitted.id)).status is JobStatus.CANCELLED


async def test_a_job_whose_node_types_a_worker_lacks_never_reaches_it(stack: Stack) -> None:
    async with stack.agent(claim_wait=0.2):
        odd = {"1": {"class_type": "NotOnThisGPU", "inputs": {}}}
        submitted = await stack.service.submit(user(1), Lane.NORMAL, odd)
        mark = stack.claims["gpu1"].mark()
        # A whole claim made while the job was queued came back with nothing for this GPU.
        await until(lambda: "nothing" in stack.claims["gpu1"].after(mark), 10, "an empty claim")
        job = await stack.job(submitted.id)
    assert job.status is JobStatus.QUEUED
    assert job.attempts == 0
    assert job.hold is not None
    assert "NotOnThisGPU" in job.hold


async def test_input_files_travel_with_the_job_under_collision_free_names(stack: Stack) -> None:
    folder = stack.data / "inputs/user001"
    folder.mkdir(parents=True)
    Image.new("RGB", (10, 20), (255, 0, 0)).save(folder / "cat.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "in"}},
    }
    async with stack.agent():
        submitted = await stack.service.submit(user(1), Lane.NORMAL, prompt)
        job = await stack.finished(submitted.id)
    assert job.status is JobStatus.COMPLETED, job.error
    staged = list((stack.sim.base / "input").iterdir())
    assert [p.name for p in staged] == [f"cw_user001_{submitted.id[:8]}_cat.png"]
    with Image.open(stack.data / "outputs/user001" / job.outputs[0]["filename"]) as img:
        assert img.size == (10, 20)


async def test_a_failing_node_fails_the_job_with_comfyuis_error(stack: Stack) -> None:
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "broken.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    folder = stack.data / "inputs/user001"
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"not an image")
    async with stack.agent():
        submitted = await stack.service.submit(user(1), Lane.NORMAL, prompt)
        job = await stack.finished(submitted.id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.type == "execution_error"
    assert job.error.node_type == "LoadImage"


@pytest.mark.slow
async def test_a_worker_killed_mid_job_loses_it_and_another_finishes_it_once(
    stack: Stack,
) -> None:
    doomed = await stack.process_agent("doomed")
    submitted = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=60))

    async def running_on_doomed() -> bool:
        return (await stack.job(submitted.id)).worker == "doomed"

    await until(running_on_doomed)
    doomed.send_signal(signal.SIGKILL)
    await doomed.wait()
    async with stack.agent("rescuer"):
        job = await stack.finished(submitted.id, timeout=40)
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.worker == "rescuer"
    assert job.attempts == 2
    assert [e.to for e in job.timeline].count(JobStatus.COMPLETED) == 1
    assert "lease expired" in [e.reason for e in job.timeline if e.to is JobStatus.QUEUED][-1]


@pytest.mark.slow
async def test_a_sigtermed_worker_finishes_its_job_first(
    stack: Stack, redis: Redis, prefix: str
) -> None:
    proc = await stack.process_agent("polite")
    submitted = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=20))

    async def running() -> bool:
        return (await stack.job(submitted.id)).status is JobStatus.RUNNING

    await until(running)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    job = await stack.job(submitted.id)
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.attempts == 1
    # The process is gone, and no claim of it waits in the queue manager: a job submitted now
    # could only reach it by a hand-over inside the submission itself.
    assert not await in_claim(redis, prefix, "polite")
    # It said it left: the room lists it no more (rather than as offline, later).
    assert "polite" not in [w.id for w in await stack.service.gpu_workers()]
    later = await stack.service.submit(user(2), Lane.NORMAL, SAVE)
    assert (await stack.job(later.id, user(2))).status is JobStatus.QUEUED  # it claimed no more


class AnswerInFlight(ManagerClient):
    """A claim the manager has answered (the job is running on the dashboard) whose answer
    reaches the agent only after the agent, told to stop, asked the manager to end its wait."""

    def __init__(self, settings: WorkerSettings) -> None:
        super().__init__(settings)
        self.answered = asyncio.Event()
        self._stop_sent = asyncio.Event()

    async def claim(self) -> Assignment | None:
        job = await super().claim()
        if job is not None:
            self.answered.set()
            await self._stop_sent.wait()
        return job

    async def stop_waiting(self) -> None:
        await super().stop_waiting()
        self._stop_sent.set()


async def test_a_worker_stopped_as_its_claim_is_answered_runs_that_job_before_leaving(
    stack: Stack,
) -> None:
    settings = await stack.worker_settings("between", claim_wait=4.0)
    manager = AnswerInFlight(settings)
    comfy = ComfyClient(settings.comfyui_url.unicode_string(), 10.0)
    agent = Agent(settings, manager, comfy)
    running = asyncio.create_task(agent.run())
    try:
        await until(lambda: stack._registered("between"))
        submitted = await stack.service.submit(user(1), Lane.NORMAL, SAVE)
        await asyncio.wait_for(manager.answered.wait(), 10)
        agent.drain()
        await asyncio.wait_for(running, 30)
    finally:
        running.cancel()
        await manager.aclose()
        await comfy.aclose()
    job = await stack.job(submitted.id)
    assert job.status is JobStatus.COMPLETED, job.timeline
    assert job.attempts == 1 and job.worker == "between"
    assert "between" not in [w.id for w in await stack.service.gpu_workers()]


async def test_a_second_sigterm_stops_the_worker_at_once_and_gives_its_job_back(
    stack: Stack,
) -> None:
    proc = await stack.process_agent("hasty", logs=True)
    submitted = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=10_000))

    async def running() -> bool:
        return (await stack.job(submitted.id)).status is JobStatus.RUNNING

    await until(running)
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    while b"draining" not in await asyncio.wait_for(proc.stderr.readline(), 10):
        pass
    proc.send_signal(signal.SIGTERM)  # the operator means it: stop now
    rest = await asyncio.wait_for(proc.stderr.read(), 30)
    assert await asyncio.wait_for(proc.wait(), 30) == 130
    assert b"Traceback" not in rest, rest.decode()
    job = await stack.job(submitted.id)
    assert job.status is JobStatus.QUEUED  # back at once, not after its lease
    assert "given back by worker hasty" in job.timeline[-1].reason


async def test_a_comfyui_that_dies_mid_job_gives_the_job_back_until_it_returns(
    redis_server: RedisServer, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        redis_server,
        prefix,
        data_dir=tmp_path / "data",
        lease_seconds=1.5,
        heartbeat_seconds=0.3,
        worker_timeout_seconds=2,
    )
    app = create_app(settings)
    config = SimulatorConfig(step_delay=0.05)
    async with serve(app) as url:
        first = serve_simulator(tmp_path / "sim", config)
        sim = await first.__aenter__()
        stack = Stack(url, app.state.service, tmp_path / "data", sim, app.state.tokens, tmp_path)
        port = int(sim.url.rsplit(":", 1)[1])
        async with stack.agent():
            submitted = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=200))

            async def sampling() -> bool:
                return bool(sim.sim.state.running)

            await until(sampling)
            await first.__aexit__(None, None, None)  # the GPU box's ComfyUI goes away

            async def given_back() -> bool:
                return (await stack.job(submitted.id)).status is JobStatus.QUEUED

            await until(given_back)
            job = await stack.job(submitted.id)
            assert "given back by worker gpu1" in job.timeline[-1].reason
            # The agent claims nothing until its ComfyUI answers again: it is trying to
            # register anew, and failing.
            given_back_at = stack.claims["gpu1"].mark()
            failures = agent_warnings(caplog, "registration failed")
            await until(lambda: agent_warnings(caplog, "registration failed") > failures)
            assert (await stack.job(submitted.id)).status is JobStatus.QUEUED  # not re-claimed
            assert stack.claims["gpu1"].after(given_back_at) == []
            async with serve_simulator(tmp_path / "sim2", SimulatorConfig(), port=port):
                done = await stack.finished(submitted.id, timeout=40)
    assert done.status is JobStatus.COMPLETED, done.error
    assert done.attempts == 2


async def test_a_drained_worker_stays_connected_and_resumes_when_told(stack: Stack) -> None:
    async with stack.agent() as agent:
        await stack.service.drain_worker(WorkerId("gpu1"), INSTRUCTOR)
        submitted = await stack.service.submit(user(1), Lane.NORMAL, SAVE)
        mark = stack.claims["gpu1"].mark()
        # It asked again while the job was queued, and was refused.
        await until(lambda: "JobLost" in stack.claims["gpu1"].after(mark), 10, "a refused claim")
        assert (await stack.job(submitted.id)).status is JobStatus.QUEUED
        assert not agent.draining.is_set()  # still running, just not claiming
        await stack.service.resume_worker(WorkerId("gpu1"), INSTRUCTOR)
        job = await stack.finished(submitted.id)
    assert job.status is JobStatus.COMPLETED


@pytest.mark.slow
async def test_a_large_output_is_copied_with_flat_agent_memory(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    import psutil

    size = 300 * 2**20
    settings = make_settings(redis_server, prefix, data_dir=tmp_path / "data")
    app = create_app(settings)
    config = SimulatorConfig(large_output_bytes=size)
    async with serve(app) as url, serve_simulator(tmp_path / "sim", config) as sim:
        stack = Stack(url, app.state.service, tmp_path / "data", sim, app.state.tokens, tmp_path)
        proc = await stack.process_agent("big")
        try:
            agent = psutil.Process(proc.pid)
            baseline = agent.memory_info().rss
            prompt = {
                "1": {
                    "class_type": "EmptyImage",
                    "inputs": {"width": 32, "height": 32, "batch_size": 2, "color": 0},
                },
                "2": {
                    "class_type": "SaveAnimatedWEBP",
                    "inputs": {
                        "images": ["1", 0],
                        "filename_prefix": "video/clip",
                        "fps": 6.0,
                        "lossless": False,
                        "quality": 80,
                        "method": "default",
                    },
                },
            }
            submitted = await stack.service.submit(user(1), Lane.NORMAL, prompt)
            peak = baseline
            deadline = asyncio.get_running_loop().time() + 60
            while not (await stack.job(submitted.id)).status.is_final:
                assert asyncio.get_running_loop().time() < deadline, "the job did not finish"
                peak = max(peak, agent.memory_info().rss)
                await asyncio.sleep(0.005)
            job = await stack.job(submitted.id)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            finally:
                await stack.stop_processes()  # never left running, whatever happened
    assert job.status is JobStatus.COMPLETED, job.error
    stored = stack.data / "outputs/user001/video" / str(job.outputs[0]["filename"])
    assert stored.stat().st_size >= size
    # The agent streams: its memory must not grow with the file (300 MB here).
    assert peak - baseline < 64 * 2**20, f"agent grew by {(peak - baseline) / 2**20:.0f} MiB"


async def test_an_agent_started_before_the_queue_manager_connects_when_it_comes_up(
    redis_server: RedisServer, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from queue_manager.cli.redis_server import free_port

    settings = make_settings(redis_server, prefix, data_dir=tmp_path / "data")
    port = free_port()
    async with serve_simulator(tmp_path / "sim") as sim:
        # The operator made the token earlier (through a queue manager that then went down).
        first = create_app(settings)
        async with serve(first, port) as url:
            stack = Stack(
                url, first.state.service, tmp_path / "data", sim, first.state.tokens, tmp_path
            )
            ws = await stack.worker_settings("early")
        manager, comfy = ManagerClient(ws), ComfyClient(sim.url, 10.0)
        agent = Agent(ws, manager, comfy)
        task = asyncio.create_task(agent.run())
        # Nobody answers: the agent retries with backoff, and keeps running.
        await until(lambda: agent_warnings(caplog, "registration failed") >= 2)
        assert not task.done()
        second = create_app(settings)
        async with serve(second, port):
            svc: QueueService = second.state.service
            submitted = await svc.submit(user(1), Lane.NORMAL, SAVE)
            deadline = asyncio.get_running_loop().time() + 30
            while not (job := await svc.user_job(OWNER, submitted.id)).status.is_final:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            agent.drain()
            await asyncio.wait_for(task, 15)
        await manager.aclose()
        await comfy.aclose()
    assert job.status is JobStatus.COMPLETED


async def test_text_outputs_are_kept_on_the_job(stack: Stack) -> None:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 40, "height": 24, "batch_size": 3, "color": 0},
        },
        "2": {"class_type": "GetImageSize", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    }
    async with stack.agent():
        submitted = await stack.service.submit(user(1), Lane.NORMAL, prompt)
        job = await stack.finished(submitted.id)
    assert job.status is JobStatus.COMPLETED, job.error
    # Text is UI output, not a file: kept per node (history shows it), never as a file.
    assert job.outputs == []
    assert job.ui == {"3": {"text": ["40"]}}


async def test_a_job_survives_a_queue_manager_restart_in_its_middle(
    redis_server: RedisServer, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from queue_manager.cli.redis_server import free_port

    settings = make_settings(
        redis_server, prefix, data_dir=tmp_path / "data", lease_seconds=10, heartbeat_seconds=1
    )
    port = free_port()
    async with serve_simulator(tmp_path / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        first = create_app(settings)
        async with serve(first, port) as url:
            stack = Stack(
                url, first.state.service, tmp_path / "data", sim, first.state.tokens, tmp_path
            )
            ws = await stack.worker_settings("steady")
            manager, comfy = ManagerClient(ws), ComfyClient(sim.url, 10.0)
            agent = Agent(ws, manager, comfy)
            task = asyncio.create_task(agent.run())
            await until(lambda: stack._registered("steady"))
            submitted = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=30))

            async def sampling() -> bool:
                return bool(sim.sim.state.running)

            await until(sampling)
        # The queue manager is gone mid-run (a deploy, a crash) and comes back once the agent
        # has noticed.
        beats = agent_warnings(caplog, "heartbeat failed")
        await until(lambda: agent_warnings(caplog, "heartbeat failed") > beats)
        second = create_app(settings)
        async with serve(second, port):
            svc: QueueService = second.state.service
            deadline = asyncio.get_running_loop().time() + 30
            while not (job := await svc.user_job(OWNER, submitted.id)).status.is_final:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            agent.drain()
            await asyncio.wait_for(task, 15)
        await manager.aclose()
        await comfy.aclose()
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.attempts == 1
    assert (tmp_path / "data/outputs/user001" / str(job.outputs[0]["filename"])).is_file()


async def test_a_worker_the_manager_forgot_registers_again_and_works_on(stack: Stack) -> None:
    async with stack.agent():
        await stack.service.remove_worker(WorkerId("gpu1"), INSTRUCTOR)
        await until(lambda: stack._registered("gpu1"))  # back by itself
        submitted = await stack.service.submit(user(1), Lane.NORMAL, SAVE)
        job = await stack.finished(submitted.id)
    assert job.status is JobStatus.COMPLETED


# -- keeping the GPU busy: the next job waits in ComfyUI's own queue ---------------------------


def pending_ids(stack: Stack) -> list[str]:
    return [item.prompt_id for item in stack.sim.sim.state.pending]


def running_id(stack: Stack) -> str | None:
    running = stack.sim.sim.state.running
    return running.prompt_id if running else None


async def test_the_next_job_waits_in_comfyuis_own_queue_while_one_runs(stack: Stack) -> None:
    async with stack.agent():
        first = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=40))
        second = await stack.service.submit(user(2), Lane.NORMAL, sampler(steps=2))
        await until(lambda: running_id(stack) == first.id and pending_ids(stack) == [second.id])

        async def said_next() -> bool:  # what the participant and the dashboard show
            return (await stack.job(second.id, user(2))).phase == NEXT_ON_GPU_PHASE

        await until(said_next, 10, "the waiting job said to be next on the GPU")
        waiting = await stack.job(second.id, user(2))
        assert waiting.status is JobStatus.RUNNING and waiting.started_at is None
        (worker,) = await stack.service.gpu_workers()
        assert (worker.job, worker.next) == (first.id, second.id)
        done = [await stack.finished(first.id), await stack.finished(second.id, owner=user(2))]
    assert [j.status for j in done] == [JobStatus.COMPLETED, JobStatus.COMPLETED]
    assert [j.attempts for j in done] == [1, 1]
    # ComfyUI started the second the moment the first ended: it was already in its queue.
    history = stack.sim.sim.state.history
    assert history[second.id].start_ms - history[first.id].end_ms < 1000


async def test_a_cancelled_job_waiting_in_comfyuis_queue_is_taken_out_and_never_runs(
    stack: Stack,
) -> None:
    async with stack.agent():
        first = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=60))
        second = await stack.service.submit(user(2), Lane.NORMAL, sampler(steps=2))
        await until(lambda: pending_ids(stack) == [second.id])
        await stack.service.cancel(second.id, INSTRUCTOR)
        await until(lambda: pending_ids(stack) == [], 10, "taken out of ComfyUI's queue")
        assert running_id(stack) == first.id  # the job before it runs on, untouched
        done = await stack.finished(first.id)
    assert done.status is JobStatus.COMPLETED, done.error
    assert second.id not in stack.sim.sim.state.history
    assert (await stack.job(second.id, user(2))).status is JobStatus.CANCELLED


async def test_an_instructors_job_takes_back_a_participants_job_handed_early(
    stack: Stack,
) -> None:
    async with stack.agent():
        first = await stack.service.submit(user(1), Lane.NORMAL, sampler(steps=60))
        early = await stack.service.submit(user(2), Lane.NORMAL, sampler(steps=2))
        await until(lambda: pending_ids(stack) == [early.id])
        demo = await stack.service.submit(INSTRUCTOR, Lane.INSTRUCTOR, sampler(steps=2))
        # The participant's job leaves ComfyUI's queue and the instructor's takes its place.
        await until(lambda: pending_ids(stack) == [demo.id], 10, "the instructor's job next")
        returned = await stack.job(early.id, user(2))
        assert returned.status in (JobStatus.QUEUED, JobStatus.RUNNING)
        jobs = [
            await stack.finished(first.id),
            await stack.finished(demo.id, owner=INSTRUCTOR),
            await stack.finished(early.id, owner=user(2)),
        ]
    assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 3
    history = stack.sim.sim.state.history
    assert history[first.id].end_ms <= history[demo.id].start_ms
    assert history[demo.id].end_ms <= history[early.id].start_ms
    assert jobs[2].attempts == 1  # the hand-over taken back is not an attempt
    assert any("before it started" in t.reason for t in jobs[2].timeline)
