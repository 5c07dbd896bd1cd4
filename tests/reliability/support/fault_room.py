"""A room for a fault test: the queue manager on a real uvicorn over the private Redis, three
participants whose pages keep their sockets open from the start, the GPU side as real
processes (processes.py), and the jobs the manager accepted, ready for the invariants."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.endpoints import endpoint
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Job, JobStatus
from queue_manager.service.queue import QueueService
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

USERS = [UserId(f"user00{i}") for i in (1, 2, 3)]
PASSWORD = "fault-suite-password"
INSTRUCTOR = UserId("instructor")
STEPS = 10  # x 0.05 s per step on the simulator: a job is caught running without trouble


def run(prefix: str, steps: int = STEPS) -> dict[str, Any]:
    """The default text-to-image graph saving under `prefix` (one prefix per job), with a seed
    of its own: ComfyUI would otherwise take the sampler's result from its cache, and the job
    would end before a test can catch it running."""
    prompt = copy.deepcopy(sampler(steps))
    prompt["9"]["inputs"]["filename_prefix"] = prefix
    prompt["3"]["inputs"]["seed"] = zlib.crc32(prefix.encode())
    return prompt


@dataclass
class FaultRoom:
    url: str
    service: QueueService
    view: RoomView
    tokens: TokenStore
    gpus: GpuSide
    pages: list[ParticipantPage]
    accepted: list[Accepted]

    async def token(self, name: str) -> str:
        return await self.tokens.create(WorkerId(name))

    async def add_endpoint(self, name: str, url: str, **options: Any) -> None:
        await self.service.add_endpoint(endpoint(name, url, **options), INSTRUCTOR)

    async def submit_all(
        self, per_page: int = 2, max_attempts: int = 2, steps: int = STEPS
    ) -> None:
        """Every page clicks Run `per_page` times; each job saves under a prefix of its own."""
        for n in range(per_page):
            for page in self.pages:
                job_id = await page.submit(run(f"f/{page.user}-{n}", steps))
                accepted = Accepted(
                    job_id, page.user, max_attempts=max_attempts, client_id=page.client_id
                )
                self.accepted.append(accepted)

    async def job(self, job_id: JobId) -> Job:
        found = await self.view.job(job_id)
        assert found is not None, f"job {job_id} is not stored"
        return found

    async def caught_sampling(self, on: Callable[[Job], bool] = lambda j: True) -> Job:
        """The first accepted job (for which `on` holds) that ComfyUI is running now: it
        started there (`execution_start` came back) and has not ended."""
        found: list[Job] = []

        async def sampling() -> bool:
            for a in self.accepted:
                job = await self.job(a.job_id)
                if job.status is JobStatus.RUNNING and job.started_at and on(job):
                    found.append(job)
                    return True
            return False

        await until(sampling, 30, "a job running on ComfyUI")
        return found[0]

    async def registered(self, *names: str) -> None:
        async def there() -> bool:
            workers = await self.view.redis.zrange(self.view.keys.workers, 0, -1)
            return set(names) <= set(workers)

        await until(there, 30, f"workers {names} registered")

    async def consistent(self, timeout: float = 60) -> None:
        """The invariants, with the GPU side's logs in the failure message."""
        try:
            await assert_room_consistent(self.view, self.accepted, self.pages, USERS, timeout)
        except AssertionError as failed:
            raise AssertionError(f"{failed}\n{self.gpus.logs()}") from None


async def open_fault_room(
    stack: AsyncExitStack,
    redis: Redis,
    server: RedisServer,
    prefix: str,
    tmp: Path,
    **settings: float,
) -> FaultRoom:
    """Everything is stopped (processes killed) when `stack` closes."""
    data = tmp / "data"
    app = create_app(make_settings(server, prefix, data_dir=data, **settings))
    url = await stack.enter_async_context(serve(app))
    for user in USERS:
        await app.state.accounts.add(user, Role.PARTICIPANT, PASSWORD)
    gpus = await stack.enter_async_context(gpu_side(tmp))
    pages = [
        await stack.enter_async_context(ParticipantPage(url, user, PASSWORD)) for user in USERS
    ]
    view = RoomView(redis, prefix, data)
    return FaultRoom(url, app.state.service, view, app.state.tokens, gpus, pages, [])
