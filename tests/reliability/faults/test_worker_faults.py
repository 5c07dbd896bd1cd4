"""The GPU side dies mid-job, for real: a worker agent SIGKILLed, its ComfyUI (the simulator
process) SIGKILLed, an agent restarted at once with the same token. The queue manager (a real
uvicorn on the private Redis) and three participants' pages, sockets open throughout, see it;
every test ends with the room's invariants (tests/reliability/support/invariants.py)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Job, JobStatus
from queue_manager.store.accounts import Role
from queue_manager.store.tokens import TokenStore
from tests.reliability.support.invariants import (
    Accepted,
    ParticipantPage,
    RoomView,
    assert_room_consistent,
)
from tests.reliability.support.processes import GpuSide, gpu_side
from tests.support.graphs import sampler
from tests.support.servers import serve
from tests.support.settings import make_settings
from tests.support.waiting import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

USERS = [UserId(f"user00{i}") for i in (1, 2, 3)]
PASSWORD = "fault-suite-password"
STEPS = 10  # x 0.05 s per step on the simulator: a job is caught running without trouble


@dataclass
class Room:
    url: str
    view: RoomView
    tokens: TokenStore
    gpus: GpuSide
    pages: list[ParticipantPage]
    accepted: list[Accepted]

    async def token(self, name: str) -> str:
        return await self.tokens.create(WorkerId(name))

    async def submit_all(self, per_page: int = 2) -> None:
        """Every page clicks Run `per_page` times; each job saves under a prefix of its own."""
        for n in range(per_page):
            for page in self.pages:
                prompt = run(f"f/{page.user}-{n}")
                job_id = await page.submit(prompt)
                self.accepted.append(
                    Accepted(job_id, page.user, max_attempts=2, client_id=page.client_id)
                )

    async def job(self, job_id: JobId) -> Job:
        found = await self.view.job(job_id)
        assert found is not None
        return found

    async def caught_sampling(self, on: Callable[[Job], bool] = lambda j: True) -> Job:
        """The first accepted job that ComfyUI is sampling now (progress reported)."""
        found: list[Job] = []

        async def sampling() -> bool:
            for a in self.accepted:
                job = await self.job(a.job_id)
                if (
                    job.status is JobStatus.RUNNING
                    and job.progress
                    and job.progress.value
                    and on(job)
                ):
                    found.append(job)
                    return True
            return False

        await until(sampling, 30, "a job sampling on ComfyUI")
        return found[0]

    async def consistent(self) -> None:
        try:
            await assert_room_consistent(self.view, self.accepted, self.pages, USERS, 60)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n{self.gpus.logs()}") from None


def run(prefix: str) -> dict[str, Any]:
    prompt = copy.deepcopy(sampler(STEPS))
    prompt["9"]["inputs"]["filename_prefix"] = prefix
    return prompt


async def open_room(
    stack: AsyncExitStack,
    redis: Redis,
    server: RedisServer,
    prefix: str,
    tmp: Path,
    **timing: float,
) -> Room:
    settings = make_settings(server, prefix, data_dir=tmp / "data", heartbeat_seconds=0.3, **timing)
    app = create_app(settings)
    url = await stack.enter_async_context(serve(app))
    for user in USERS:
        await app.state.accounts.add(user, Role.PARTICIPANT, PASSWORD)
    gpus = await stack.enter_async_context(gpu_side(tmp))
    pages = [
        await stack.enter_async_context(ParticipantPage(url, user, PASSWORD)) for user in USERS
    ]
    return Room(url, RoomView(redis, prefix, tmp / "data"), app.state.tokens, gpus, pages, [])


@pytest.fixture
async def room_factory(
    redis: Redis, redis_server: RedisServer, prefix: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    async with AsyncExitStack() as stack:

        async def make(**timing: float) -> Room:
            return await open_room(stack, redis, redis_server, prefix, tmp_path, **timing)

        yield make


async def registered(room: Room, *names: str) -> None:
    async def there() -> bool:
        return set(names) <= set(await room.view.redis.zrange(room.view.keys.workers, 0, -1))

    await until(there, 30, f"workers {names} registered")


async def test_an_agent_sigkilled_mid_job_loses_it_to_another_and_it_runs_once(
    room_factory: Callable[..., Any],
) -> None:
    room: Room = await room_factory(lease_seconds=1.5, worker_timeout_seconds=2)
    sims = await asyncio.gather(*(room.gpus.simulator(f"sim-{i}") for i in (1, 2)))
    doomed = await room.gpus.agent("doomed", room.url, await room.token("doomed"), sims[0])
    await room.gpus.agent("rescuer", room.url, await room.token("rescuer"), sims[1])
    await registered(room, "doomed", "rescuer")
    await room.submit_all()
    lost = await room.caught_sampling(lambda j: j.worker == "doomed")
    await doomed.kill()
    await room.consistent()
    job = await room.job(lost.id)
    assert job.worker == "rescuer" and job.attempts == 2, job.timeline
    assert any("lease expired" in e.reason for e in job.timeline if e.to is JobStatus.QUEUED)


async def test_its_comfyui_sigkilled_mid_job_the_agent_gives_it_back_and_it_runs_once_later(
    room_factory: Callable[..., Any],
) -> None:
    room: Room = await room_factory(lease_seconds=1.5, worker_timeout_seconds=2)
    sim_url = await room.gpus.simulator("sim")
    await room.gpus.agent("gpu", room.url, await room.token("gpu"), sim_url)
    await registered(room, "gpu")
    await room.submit_all()
    interrupted = await room.caught_sampling()
    simulator = room.gpus.programs[0]
    await simulator.kill()

    async def given_back() -> bool:
        return any(
            e.to is JobStatus.QUEUED and "given back by worker gpu" in e.reason
            for e in (await room.job(interrupted.id)).timeline
        )

    await until(given_back, 30, "the job given back")
    await room.gpus.simulator("sim", port=int(sim_url.rsplit(":", 1)[1]))  # the box's restart
    await room.consistent()
    assert (await room.job(interrupted.id)).attempts == 2


async def test_an_agent_restarted_at_once_with_its_token_gives_its_job_back_at_once(
    room_factory: Callable[..., Any],
) -> None:
    # Leases far longer than the test: only the restart itself can give the job back.
    room: Room = await room_factory(lease_seconds=600, worker_timeout_seconds=600)
    sim_url = await room.gpus.simulator("sim")
    token = await room.token("gpu")
    first = await room.gpus.agent("gpu", room.url, token, sim_url)
    await registered(room, "gpu")
    await room.submit_all()
    held = await room.caught_sampling()
    await first.kill()
    await room.gpus.agent("gpu", room.url, token, sim_url)
    await room.consistent()
    job = await room.job(held.id)
    requeued = [e.reason for e in job.timeline if e.to is JobStatus.QUEUED][1:]
    assert requeued == ["worker gpu restarted"], job.timeline
    assert job.attempts == 2
