"""Outputs are recorded where they are written: once per (job, attempt, reported name), never
left behind when the upload fails (a lost lease mid-copy, Redis away), and announced to the page
as this queue manager stored them, whatever the worker says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.service.queue import QueueService
from tests.support.jobs import prompt, user
from tests.support.settings import make_settings

CAPS = {"node_types": ["SaveImage", "EmptyImage", "KSampler"], "info": {"gpu": "sim"}}
INSTRUCTOR = UserId("instructor")
PNG = {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output", "node_id": "9"}


class Gpu:
    def __init__(self, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
        self.client, self.auth = client, auth

    async def claim(self) -> dict[str, Any]:
        r = await self.client.post("/worker/v1/claim", headers=self.auth)
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        return job

    async def upload(
        self, job: dict[str, Any], body: bytes | AsyncIterator[bytes], **params: Any
    ) -> httpx.Response:
        query = {"attempt": job["attempt"], **PNG, **params}
        return await self.client.put(
            f"/worker/v1/jobs/{job['id']}/outputs", params=query, content=body, headers=self.auth
        )


@pytest.fixture
async def stack(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[QueueService, Gpu, Path]]:
    app = create_app(make_settings(redis_server, prefix, data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        token = await app.state.tokens.create(WorkerId("gpu1"))
        auth = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as client:
            r = await client.post("/worker/v1/register", json=CAPS, headers=auth)
            assert r.status_code == 204, r.text
            yield app.state.service, Gpu(client, auth), tmp_path / "outputs" / "user001"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def test_a_retried_upload_of_the_same_output_stores_one_file(
    stack: tuple[QueueService, Gpu, Path],
) -> None:
    service, gpu, outputs = stack
    await service.submit(user(1), Lane.NORMAL, prompt())
    job = await gpu.claim()
    first = await gpu.upload(job, b"png-bytes")
    again = await gpu.upload(job, b"png-bytes")  # its answer was lost: the agent sends it again
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert files_in(outputs) == ["ComfyUI_00001_.png"]
    r = await gpu.client.post(
        f"/worker/v1/jobs/{job['id']}/complete", json={"attempt": 1}, headers=gpu.auth
    )
    assert r.status_code == 204
    done = await service.job(JobId(job["id"]))
    assert done.status is JobStatus.COMPLETED
    assert [o["filename"] for o in done.outputs] == ["ComfyUI_00001_.png"]


async def test_an_upload_whose_job_is_cancelled_mid_copy_leaves_no_file(
    stack: tuple[QueueService, Gpu, Path],
) -> None:
    service, gpu, outputs = stack
    submitted = await service.submit(user(1), Lane.NORMAL, prompt())
    job = await gpu.claim()

    async def body() -> AsyncIterator[bytes]:
        yield b"first half "
        await service.cancel(submitted.id, INSTRUCTOR)  # the instructor cancels meanwhile
        yield b"second half"

    r = await gpu.upload(job, body())
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "lease_lost"
    assert files_in(outputs) == []
    assert (await service.job(submitted.id)).outputs == []


async def test_an_upload_is_refused_and_leaves_nothing_while_redis_is_away_then_works_once(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    outputs = tmp_path / "data" / "outputs" / "user001"
    app = create_app(make_settings(server, "out:", data_dir=tmp_path / "data"))
    try:
        async with app.router.lifespan_context(app):
            service: QueueService = app.state.service
            token = await app.state.tokens.create(WorkerId("gpu1"))
            auth = {"Authorization": f"Bearer {token}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://qm") as client:
                await client.post("/worker/v1/register", json=CAPS, headers=auth)
                gpu = Gpu(client, auth)
                submitted = await service.submit(user(1), Lane.NORMAL, prompt())
                job = await gpu.claim()

                async def body() -> AsyncIterator[bytes]:
                    yield b"first half "
                    server.stop()  # the store goes away while the file is being copied
                    yield b"second half"

                refused = await gpu.upload(job, body())
                assert refused.status_code == 503
                assert refused.json()["error"]["code"] == "unavailable"
                assert files_in(outputs) == []
                server.start()
                stored = await gpu.upload(job, b"first half second half")  # the agent retries
                assert stored.status_code == 201, stored.text
                assert files_in(outputs) == ["ComfyUI_00001_.png"]
                done = await client.post(
                    f"/worker/v1/jobs/{job['id']}/complete", json={"attempt": 1}, headers=auth
                )
                assert done.status_code == 204
                final = await service.job(submitted.id)
                assert [o["filename"] for o in final.outputs] == ["ComfyUI_00001_.png"]
    finally:
        server.stop()


async def test_the_page_is_told_of_files_as_stored_never_as_the_worker_describes_them(
    stack: tuple[QueueService, Gpu, Path],
) -> None:
    service, gpu, _ = stack
    await service.submit(user(1), Lane.NORMAL, prompt())
    job = await gpu.claim()
    await gpu.upload(job, b"png")
    lie = [{"filename": "../../user002/secret.png", "subfolder": "", "type": "output"}]
    with service.subscribe(user(1)) as events:
        r = await gpu.client.post(
            f"/worker/v1/jobs/{job['id']}/events",
            json={"attempt": 1, "type": "job.executed", "data": {"node": "9", "files": lie}},
            headers=gpu.auth,
        )
        assert r.status_code == 204, r.text
        while (event := await asyncio.wait_for(events.get(), 5)).type != EventType.JOB_EXECUTED:
            pass
    assert [f["filename"] for f in event.data["files"]] == ["ComfyUI_00001_.png"]  # type: ignore[index,union-attr]


async def test_a_report_of_an_unknown_kind_is_refused(
    stack: tuple[QueueService, Gpu, Path],
) -> None:
    service, gpu, _ = stack
    await service.submit(user(1), Lane.NORMAL, prompt())
    job = await gpu.claim()
    r = await gpu.client.post(
        f"/worker/v1/jobs/{job['id']}/events",
        json={"attempt": 1, "type": "job.completed", "data": {}},  # ours to announce, not theirs
        headers=gpu.auth,
    )
    assert r.status_code == 422
