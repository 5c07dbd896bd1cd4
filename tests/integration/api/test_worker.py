"""The worker API in-process: tokens, long-poll claims, reports, streamed outputs, finishing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.service.queue import QueueService
from tests.support.jobs import in_claim, prompt, user
from tests.support.settings import make_settings
from tests.support.waiting import until

CAPS = {"node_types": ["SaveImage", "EmptyImage", "KSampler"], "info": {"gpu": "sim"}}


@dataclass
class Stack:
    app: FastAPI
    client: httpx.AsyncClient
    data: Path

    @property
    def service(self) -> QueueService:
        service: QueueService = self.app.state.service
        return service

    async def token(self, name: str) -> dict[str, str]:
        token = await self.app.state.tokens.create(WorkerId(name))
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def stack(redis_server: RedisServer, prefix: str, tmp_path: Path) -> AsyncIterator[Stack]:
    app = create_app(make_settings(redis_server, prefix, data_dir=tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as client:
            yield Stack(app, client, tmp_path)


async def registered(stack: Stack, name: str = "gpu1") -> dict[str, str]:
    auth = await stack.token(name)
    r = await stack.client.post("/worker/v1/register", json=CAPS, headers=auth)
    assert r.status_code == 204, r.text
    return auth


async def test_requests_without_a_valid_worker_token_are_refused(stack: Stack) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpw"}):
        r = await stack.client.post("/worker/v1/claim", headers=headers)
        assert r.status_code == 401
    auth = await stack.token("gpu1")
    await stack.app.state.tokens.revoke(WorkerId("gpu1"))
    assert (await stack.client.post("/worker/v1/claim", headers=auth)).status_code == 401


async def test_claim_returns_204_when_nothing_is_there(stack: Stack) -> None:
    auth = await registered(stack)
    r = await stack.client.post("/worker/v1/claim", params={"wait": 0}, headers=auth)
    assert r.status_code == 204


async def test_a_job_runs_end_to_end_through_the_api(
    stack: Stack, redis: Redis, prefix: str
) -> None:
    auth = await registered(stack)
    sent = prompt("EmptyImage", "SaveImage")
    sent["1"]["_meta"] = {"title": "Save"}  # type: ignore[index]
    waiting = asyncio.create_task(
        stack.client.post("/worker/v1/claim", params={"wait": 20}, headers=auth)
    )
    await until(lambda: in_claim(redis, prefix, "gpu1"), 5, "the long poll waiting")
    job = await stack.service.submit(
        user(1), Lane.NORMAL, sent, client_id="abc", extra_data={"extra_pnginfo": {"w": 1}}
    )
    r = await asyncio.wait_for(waiting, 10)
    assert r.status_code == 200
    got = r.json()
    assert got["id"] == job.id
    assert got["prompt"] == sent  # verbatim, _meta included
    assert got["extra_data"] == {"extra_pnginfo": {"w": 1}}
    assert (got["user"], got["client_id"], got["attempt"]) == ("user001", "abc", 1)

    base = f"/worker/v1/jobs/{job.id}"
    r = await stack.client.post(
        f"{base}/events",
        json={"attempt": 1, "type": "job.progress", "data": {"value": 3, "max": 20}},
        headers=auth,
    )
    assert r.status_code == 204
    r = await stack.client.post(
        "/worker/v1/heartbeat", json={"job_id": job.id, "attempt": 1}, headers=auth
    )
    assert r.status_code == 204

    async def body() -> AsyncIterator[bytes]:
        yield b"\x89PNG"
        yield b"rest"

    r = await stack.client.put(
        f"{base}/outputs",
        params={"attempt": 1, "filename": "ComfyUI_00001_.png", "subfolder": "run"},
        content=body(),
        headers=auth,
    )
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored == {
        "filename": "ComfyUI_00001_.png",
        "subfolder": "run",
        "type": "output",
        "size": 8,
        "node_id": "",
        "media": "images",
    }
    assert (stack.data / "outputs/user001/run/ComfyUI_00001_.png").read_bytes() == b"\x89PNGrest"
    r = await stack.client.post(f"{base}/complete", json={"attempt": 1}, headers=auth)
    assert r.status_code == 204
    done = await stack.service.user_job(user(1), job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.outputs == [stored]


async def test_output_names_from_a_worker_cannot_leave_the_users_folder(stack: Stack) -> None:
    auth = await registered(stack)
    job = await stack.service.submit(user(1), Lane.NORMAL, prompt())
    await stack.client.post("/worker/v1/claim", headers=auth)
    for filename, subfolder in [
        ("../../user002/x.png", ""),
        ("x.png", "../../../../etc"),
        ("/etc/passwd", ""),
        ("..\\..\\x.png", ""),
    ]:
        r = await stack.client.put(
            f"/worker/v1/jobs/{job.id}/outputs",
            params={"attempt": 1, "filename": filename, "subfolder": subfolder},
            content=b"data",
            headers=auth,
        )
        assert r.status_code == 201, r.text
    every = sorted(
        p.relative_to(stack.data).as_posix() for p in stack.data.rglob("*") if p.is_file()
    )
    assert all(p.startswith("outputs/user001/") for p in every), every
    assert len(every) == 4


async def test_a_worker_cannot_touch_a_job_it_does_not_hold(stack: Stack) -> None:
    holder = await registered(stack, "gpu1")
    other = await registered(stack, "gpu2")
    job = await stack.service.submit(user(1), Lane.NORMAL, prompt())
    assert (await stack.client.post("/worker/v1/claim", headers=holder)).status_code == 200
    base = f"/worker/v1/jobs/{job.id}"
    attempts = [
        stack.client.post(f"{base}/complete", json={"attempt": 1}, headers=other),
        stack.client.post(
            f"{base}/fail",
            json={"attempt": 1, "error": {"type": "x", "message": "x"}},
            headers=other,
        ),
        stack.client.put(
            f"{base}/outputs",
            params={"attempt": 1, "filename": "x.png"},
            content=b"x",
            headers=other,
        ),
        stack.client.post(
            f"{base}/events", json={"attempt": 1, "type": "job.progress"}, headers=other
        ),
        stack.client.post(
            f"{base}/events/batch",
            json={"attempt": 1, "reports": [{"type": "job.started"}] * 2},
            headers=other,
        ),
        stack.client.post(
            "/worker/v1/heartbeat", json={"job_id": job.id, "attempt": 1}, headers=other
        ),
        stack.client.post(f"{base}/complete", json={"attempt": 2}, headers=holder),  # stale attempt
    ]
    for response in await asyncio.gather(*attempts):
        assert response.status_code == 409, response.text
    assert (await stack.service.user_job(user(1), job.id)).status is JobStatus.RUNNING
    assert not (stack.data / "outputs").exists()


async def test_cancelled_job_answers_409_to_its_worker(stack: Stack) -> None:
    auth = await registered(stack)
    job = await stack.service.submit(user(1), Lane.NORMAL, prompt())
    await stack.client.post("/worker/v1/claim", headers=auth)
    await stack.service.cancel(job.id, UserId("instructor"))
    r = await stack.client.post(
        "/worker/v1/heartbeat", json={"job_id": job.id, "attempt": 1}, headers=auth
    )
    assert r.status_code == 409
    assert "cancelled" in r.json()["error"]["message"]


async def test_worker_failure_is_recorded_with_comfyuis_error(stack: Stack) -> None:
    auth = await registered(stack)
    job = await stack.service.submit(user(1), Lane.NORMAL, prompt())
    await stack.client.post("/worker/v1/claim", headers=auth)
    error = {"type": "execution_error", "message": "boom", "node_id": "3", "node_type": "KSampler"}
    r = await stack.client.post(
        f"/worker/v1/jobs/{job.id}/fail", json={"attempt": 1, "error": error}, headers=auth
    )
    assert r.status_code == 204
    failed = await stack.service.user_job(user(1), JobId(job.id))
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert json.loads(failed.error.model_dump_json())["node_type"] == "KSampler"


async def test_malformed_worker_requests_get_422(stack: Stack) -> None:
    auth = await stack.token("gpu1")
    r = await stack.client.post("/worker/v1/register", json={"node_types": []}, headers=auth)
    assert r.status_code == 422


async def test_reports_sent_together_are_applied_and_announced_in_their_order(
    stack: Stack,
) -> None:
    auth = await registered(stack)
    job = await stack.service.submit(user(1), Lane.NORMAL, prompt("EmptyImage", "SaveImage"))
    await stack.client.post("/worker/v1/claim", headers=auth)
    reports = [
        {"type": "job.started"},
        {"type": "job.executing", "data": {"node": "1"}},
        {"type": "job.progress", "data": {"value": 1, "max": 2, "node": "1"}},
        {"type": "job.executing", "data": {"node": "2"}},
    ]
    with stack.service.subscribe(user(1)) as events:
        r = await stack.client.post(
            f"/worker/v1/jobs/{job.id}/events/batch",
            json={"attempt": 1, "reports": reports},
            headers=auth,
        )
        assert r.status_code == 204, r.text
        seen = []
        while len(seen) < len(reports):
            event = await asyncio.wait_for(events.get(), 5)
            if event.type != "job.claimed":
                seen.append((event.type, event.data.get("node")))
    assert seen == [
        ("job.started", None),
        ("job.executing", "1"),
        ("job.progress", "1"),
        ("job.executing", "2"),
    ]
    running = await stack.service.user_job(user(1), job.id)
    assert running.started_at is not None and running.node == "2"


async def test_a_batch_of_reports_out_of_bounds_is_refused_whole(stack: Stack) -> None:
    auth = await registered(stack)
    job = await stack.service.submit(user(1), Lane.NORMAL, prompt())
    await stack.client.post("/worker/v1/claim", headers=auth)
    url = f"/worker/v1/jobs/{job.id}/events/batch"
    started = {"type": "job.started"}
    bodies = [
        {"attempt": 1, "reports": []},
        {"attempt": 1, "reports": [started] * 65},
        {"attempt": 1, "reports": [started, {"type": "job.completed"}]},
        {"attempt": 1, "reports": [started, {"type": "job.progress", "data": [1]}]},
        {"attempt": 1, "reports": started},
        {"reports": [started]},
    ]
    for body in bodies:
        r = await stack.client.post(url, json=body, headers=auth)
        assert r.status_code == 422, (body, r.text)
    huge = {"type": "job.progress", "data": {"text": "x" * 2**20}}
    r = await stack.client.post(url, json={"attempt": 1, "reports": [huge] * 3}, headers=auth)
    assert r.status_code == 413
    assert (await stack.service.user_job(user(1), job.id)).started_at is None  # nothing applied


async def test_a_preview_is_kept_on_the_running_job_and_announced(stack: Stack) -> None:
    auth = await registered(stack)
    job = await stack.service.submit(user(1), Lane.NORMAL, prompt())
    await stack.client.post("/worker/v1/claim", headers=auth)
    url = f"/worker/v1/jobs/{job.id}/preview"
    with stack.service.subscribe(user(1)) as events:
        r = await stack.client.put(
            url, params={"attempt": 1, "mime": "image/jpeg"}, content=b"\xff\xd8jpeg", headers=auth
        )
        assert r.status_code == 204, r.text
        event = await asyncio.wait_for(events.get(), 5)
        while event.type != "job.preview":
            event = await asyncio.wait_for(events.get(), 5)
    assert event.data == {"mime": "image/jpeg", "size": 6}
    assert await stack.service.job_preview(job.id) == ("image/jpeg", b"\xff\xd8jpeg")
    too_big = b"x" * (2 * 2**20 + 1)
    r = await stack.client.put(url, params={"attempt": 1}, content=too_big, headers=auth)
    assert r.status_code == 413


async def test_preset_worker_tokens_from_the_settings_are_accepted(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(
        redis_server, prefix, data_dir=tmp_path, worker_tokens="sim-1:0123456789abcdef0123"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as client:
            good = {"Authorization": "Bearer cwt.sim-1.0123456789abcdef0123"}
            bad = {"Authorization": "Bearer cwt.sim-1.0123456789abcdef0124"}
            assert (
                await client.post("/worker/v1/register", json=CAPS, headers=good)
            ).status_code == 204
            assert (await client.post("/worker/v1/claim", headers=bad)).status_code == 401


def test_preset_worker_tokens_must_be_well_formed() -> None:
    from pydantic import ValidationError

    from queue_manager.settings import Settings

    with pytest.raises(ValidationError, match="CW_WORKER_TOKENS"):
        Settings(worker_tokens="sim-1:short")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="CW_WORKER_TOKENS"):
        Settings(worker_tokens="Bad Name:0123456789abcdef0123")  # type: ignore[arg-type]
