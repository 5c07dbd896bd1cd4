"""Push dispatch end to end: a real Redis, the queue manager's app (its dispatcher running)
and ComfyUI simulators over real HTTP and WebSockets, called as endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.endpoint_status import EndpointPhase, EndpointStatus
from queue_manager.core.endpoints import endpoint
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Job
from queue_manager.service.queue import QueueService
from queue_manager.store.tokens import TokenStore
from tests.support.servers import serve
from tests.support.settings import make_settings
from tests.support.waiting import until

INSTRUCTOR = UserId("instructor")


@dataclass
class Room:
    qm_url: str
    service: QueueService
    data: Path
    tmp: Path
    tokens: TokenStore

    async def add(self, name: str, url: str, **options: object) -> None:
        await self.service.add_endpoint(endpoint(name, url, **options), INSTRUCTOR)  # type: ignore[arg-type]

    async def add_registered(self, name: str, url: str, **options: object) -> None:
        """The endpoint, its first slot registered with the catalogue it learnt (a slot
        registers again once it learns it, after the jobs it holds: a test about the order of
        jobs must not start before)."""
        await self.add(name, url, **options)

        async def registered() -> bool:
            workers = await self.service.gpu_workers()
            return any(w.id == f"{name}.1" and w.reports_models for w in workers)

        await until(registered, 30, f"endpoint {name} registered with its catalogue")

    async def status(self, name: str) -> EndpointStatus:
        return await self.service.endpoint_status(name)

    async def until_phase(self, name: str, *phases: EndpointPhase, timeout: float = 20) -> None:
        async def there() -> bool:
            return (await self.status(name)).phase in phases

        await until(there, timeout, f"endpoint {name} {phases}")

    async def job(self, job_id: JobId) -> Job:
        return await self.service.job(job_id)

    async def finished(self, job_id: JobId, timeout: float = 30) -> Job:
        async def done() -> bool:
            return (await self.job(job_id)).status.is_final

        await until(done, timeout, f"job {job_id} finished")
        return await self.job(job_id)


@pytest.fixture
async def room(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[Room]:
    settings = make_settings(
        redis_server,
        prefix,
        data_dir=tmp_path / "data",
        lease_seconds=3,
        heartbeat_seconds=0.3,
        worker_timeout_seconds=3,
        claim_wait_seconds=1,
        endpoint_poll_seconds=0.1,
        endpoint_lost_seconds=3,
        endpoint_request_seconds=5,
    )
    app = create_app(settings)
    async with serve(app) as url:
        yield Room(url, app.state.service, tmp_path / "data", tmp_path, app.state.tokens)
