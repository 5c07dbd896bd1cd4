"""Lease tokens over the worker API, in-process: the agent a job was pushed to reports that
attempt as the slot worker holding it, and can do nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.core.requirements import Capabilities
from queue_manager.service.queue import QueueService
from tests.support.clock import FakeClock
from tests.support.jobs import prompt, user
from tests.support.settings import make_settings

SLOT = WorkerId("box.1")


@dataclass
class Pushed:
    """A job claimed by slot `box.1`, and the lease token its agent got."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    job: JobId
    token: str

    @property
    def service(self) -> QueueService:
        service: QueueService = self.app.state.service
        return service

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def report(self, job: str, attempt: int) -> int:
        body = {"attempt": attempt, "type": "job.progress", "data": {"value": 1, "max": 2}}
        r = await self.client.post(f"/worker/v1/jobs/{job}/events", json=body, headers=self.auth)
        return r.status_code


@pytest.fixture
async def pushed(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[Pushed]:
    clock = FakeClock()
    app = create_app(make_settings(redis_server, prefix, data_dir=tmp_path), clock=clock)
    async with app.router.lifespan_context(app):
        service: QueueService = app.state.service
        await service.register_worker(SLOT, Capabilities(frozenset({"SaveImage"})), {})
        job = await service.submit(user(1), Lane.NORMAL, prompt("SaveImage"))
        claimed = await service.claim(SLOT, 0)
        assert claimed is not None and claimed.id == job.id
        token = service.lease_token(SLOT, job.id, claimed.attempts, ttl=600)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as client:
            yield Pushed(app, client, clock, job.id, token)


async def test_a_lease_token_reports_and_finishes_its_own_attempt(pushed: Pushed) -> None:
    assert await pushed.report(pushed.job, 1) == 204
    beat = {"job_id": pushed.job, "attempt": 1}
    r = await pushed.client.post("/worker/v1/heartbeat", json=beat, headers=pushed.auth)
    assert r.status_code == 204
    r = await pushed.client.post(
        f"/worker/v1/jobs/{pushed.job}/complete", json={"attempt": 1}, headers=pushed.auth
    )
    assert r.status_code == 204
    job = await pushed.service.job(pushed.job)
    assert (job.status, job.worker) == (JobStatus.COMPLETED, SLOT)


async def test_a_lease_token_is_refused_for_claim_register_catalogue_and_leave(
    pushed: Pushed,
) -> None:
    calls = [
        ("POST", "/worker/v1/claim", {}),
        ("POST", "/worker/v1/register", {"json": {"node_types": ["SaveImage"]}}),
        ("PUT", "/worker/v1/object_info", {"content": b"{}"}),
        ("POST", "/worker/v1/leave", {}),
        ("POST", "/worker/v1/heartbeat", {"json": {}}),  # an idle beat: the slot's own
    ]
    for method, path, kw in calls:
        r = await pushed.client.request(method, path, headers=pushed.auth, **kw)  # type: ignore[arg-type]
        assert r.status_code == 403, (path, r.text)
    # The slot worker is untouched: still there, still holding its job.
    assert any(w.id == SLOT for w in await pushed.service.gpu_workers())
    assert (await pushed.service.job(pushed.job)).status is JobStatus.RUNNING


async def test_a_lease_token_is_refused_for_another_job_or_attempt(pushed: Pushed) -> None:
    other = await pushed.service.submit(user(2), Lane.NORMAL, prompt("SaveImage"))
    assert await pushed.report(other.id, 1) == 403
    assert await pushed.report(pushed.job, 2) == 403
    r = await pushed.client.get(
        f"/worker/v1/jobs/{other.id}/files/inputs",
        params={"attempt": 1, "name": "x.png"},
        headers=pushed.auth,
    )
    assert r.status_code == 403


async def test_an_expired_or_forged_lease_token_is_not_a_credential(pushed: Pushed) -> None:
    token = pushed.token
    pushed.token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert await pushed.report(pushed.job, 1) == 401
    pushed.token = pushed.service.lease_token(SLOT, pushed.job, 1, ttl=10)
    assert await pushed.report(pushed.job, 1) == 204
    pushed.clock.advance(11)  # within the job's lease (30 s), past the token's life
    assert await pushed.report(pushed.job, 1) == 401


async def test_a_lease_token_stops_working_once_its_attempt_is_lost(pushed: Pushed) -> None:
    await pushed.service.cancel(pushed.job, user(1))
    assert await pushed.report(pushed.job, 1) == 409
