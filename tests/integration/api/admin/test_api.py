"""The instructor's JSON API (`/admin/api/...`), its socket, and `/metrics`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from tests.support.gpu import Gpu
from tests.support.graphs import simple_prompt
from tests.support.participants import ACCOUNTS, PASSWORD, basic
from tests.support.settings import make_settings

CONTROLS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/admin/api/queue/pause", None),
    ("POST", "/admin/api/queue/resume", None),
    ("POST", "/admin/api/jobs/{job}/cancel", None),
    ("POST", "/admin/api/jobs/{job}/front", None),
    ("POST", "/admin/api/jobs/{job}/priority", {"priority": "high"}),
    ("POST", "/admin/api/workers/gpu1/drain", None),
    ("DELETE", "/admin/api/workers/gpu1", None),
    ("PUT", "/admin/api/users/user001/limits", {"max_queued": 3, "max_running": 1}),
    ("POST", "/admin/api/users/user001/pause", {"paused": True}),
    ("POST", "/admin/api/broadcast", {"message": "hello"}),
    ("GET", "/admin/api/state", None),
    ("GET", "/admin/api/jobs/{job}", None),
]


def service_of(app: FastAPI) -> QueueService:
    service: QueueService = app.state.service
    return service


async def submit(client: httpx.AsyncClient, user: str = "user001") -> str:
    r = await client.post(f"/{user}/api/prompt", json={"prompt": simple_prompt()})
    assert r.status_code == 200, r.text
    job_id: str = r.json()["prompt_id"]
    return job_id


@pytest.mark.parametrize(("method", "path", "body"), CONTROLS)
async def test_participants_get_403_and_nobody_401_on_every_admin_route(
    alice: httpx.AsyncClient,
    nobody: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    job = await submit(alice)
    url = path.format(job=job)
    r = await alice.request(method, url, json=body)
    assert r.status_code == 403, (url, r.text)
    assert (await nobody.request(method, url, json=body)).status_code == 401


async def test_every_control_is_documented_in_the_openapi_schema(
    teacher: httpx.AsyncClient,
) -> None:
    schema = (await teacher.get("/openapi.json")).json()
    for method, path, _ in CONTROLS:
        documented = path.replace("{job}", "{job_id}").replace("gpu1", "{worker_id}")
        documented = documented.replace("user001", "{user}")
        assert method.lower() in schema["paths"][documented], documented


async def test_the_state_shows_queue_positions_running_jobs_workers_and_users(
    app: FastAPI,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
    online_gpu: Gpu,
) -> None:
    a1, a2 = await submit(alice), await submit(alice)
    b1 = await submit(bob, "user002")
    running = await online_gpu.claim()
    assert running["id"] == a1
    await online_gpu.tell(running, "job.progress", value=3, max=10, node="1")
    state = (await teacher.get("/admin/api/state")).json()
    assert [(j["id"], j["position"]) for j in state["queue"]] == [(b1, 1), (a2, 2)]
    assert state["lanes"]["normal"] == 2
    [run] = state["running"]
    assert run["id"] == a1 and run["worker"] == "gpu1"
    assert run["progress"] == {"value": 3, "max": 10}
    [worker] = state["workers"]
    assert worker["id"] == "gpu1" and worker["job"] == a1
    users = {u["user"]: u for u in state["users"]}
    assert users["user001"]["queued"] == 1 and users["user001"]["running"] == 1
    assert users["user001"]["last_wait"] is not None
    assert "prompt" not in json.dumps(state)
    detail = (await teacher.get(f"/admin/api/jobs/{a1}")).json()
    assert [t["to"] for t in detail["timeline"]] == ["queued", "running"]
    assert "prompt" not in detail


async def test_controls_steer_the_room(
    app: FastAPI,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
    online_gpu: Gpu,
) -> None:
    service = service_of(app)
    a1 = await submit(alice)
    b1 = await submit(bob, "user002")
    assert (await teacher.post("/admin/api/queue/pause")).status_code == 200
    assert (await online_gpu.client.post("/worker/v1/claim", params={"wait": 0})).status_code == 204
    await teacher.post("/admin/api/queue/resume")
    await teacher.post(f"/admin/api/jobs/{b1}/front")
    assert (await online_gpu.claim())["id"] == b1
    r = await teacher.post(f"/admin/api/jobs/{a1}/priority", json={"priority": "instructor"})
    assert r.status_code == 200
    assert (await service.user_job(UserId("user001"), JobId(a1))).lane is Lane.INSTRUCTOR
    bad = await teacher.post(f"/admin/api/jobs/{a1}/priority", json={"priority": "vip"})
    assert bad.status_code == 422
    await teacher.post(f"/admin/api/jobs/{a1}/cancel")
    assert (await service.user_job(UserId("user001"), JobId(a1))).status is JobStatus.CANCELLED
    again = await teacher.post(f"/admin/api/jobs/{a1}/cancel")
    assert again.status_code == 409
    missing = await teacher.post("/admin/api/jobs/00000000-0000-4000-8000-000000000000/cancel")
    assert missing.status_code == 404

    await teacher.put("/admin/api/users/user001/limits", json={"max_queued": 1})
    assert (await submit(alice)) and (
        await alice.post("/user001/api/prompt", json={"prompt": simple_prompt()})
    ).status_code == 429
    await teacher.put("/admin/api/users/user001/limits", json={})
    users = {u["user"]: u for u in (await service.room_state(0.0))["users"]}
    assert users["user001"]["max_queued"] is None
    await teacher.post("/admin/api/users/user002/pause", json={"paused": True})
    users = {u["user"]: u for u in (await service.room_state(0.0))["users"]}
    assert users["user002"]["paused"]

    await teacher.post("/admin/api/broadcast", json={"message": "  Lunch at 12  "})
    status = (await alice.get("/user001/api/workshop/status")).json()
    assert status["broadcast"] == "Lunch at 12"
    await teacher.post("/admin/api/broadcast", json={"message": ""})
    assert (await alice.get("/user001/api/workshop/status")).json()["broadcast"] == ""

    await teacher.post("/admin/api/workers/gpu1/drain")
    workers = (await teacher.get("/admin/api/state")).json()["workers"]
    assert workers[0]["state"] == "draining"
    assert (await teacher.delete("/admin/api/workers/gpu1")).status_code == 200
    assert (await teacher.get("/admin/api/state")).json()["workers"] == []
    assert (await teacher.post("/admin/api/workers/nope/drain")).status_code == 404


async def test_the_admin_socket_sends_state_then_live_events(base: str, online_gpu: Gpu) -> None:
    url = base.replace("http", "ws", 1) + "/admin/ws"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, additional_headers=basic("user001"))
    assert refused.value.response.status_code == 403
    async with websockets.connect(url, additional_headers=basic("teacher")) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["type"] == "state" and first["data"]["queue"] == []
        async with httpx.AsyncClient(base_url=base, auth=basic_pair("user001")) as alice_http:
            job = await submit(alice_http)
        seen: list[str] = []
        while "job.queued" not in seen:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg["type"] == "event":
                assert msg["data"]["job"] == job
                assert "prompt" not in json.dumps(msg)
                seen.append(msg["data"]["type"])
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg["type"] == "state" and msg["data"]["queue"]:
                break
        assert msg["data"]["queue"][0]["id"] == job


def basic_pair(name: str) -> tuple[str, str]:
    return (name, PASSWORD)


async def test_metrics_report_jobs_lanes_workers_and_observed_waits(
    app: FastAPI,
    alice: httpx.AsyncClient,
    online_gpu: Gpu,
) -> None:
    await submit(alice)
    job = await online_gpu.claim()
    await online_gpu.complete(job)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://qm", headers=basic("teacher")
    ) as client:
        for _ in range(500):  # until this process's metrics consumer has read the events
            text = (await client.get("/metrics")).text
            if "comfy_workshop_run_seconds_count 1.0" in text:
                break
            await asyncio.sleep(0.01)
    assert 'comfy_workshop_jobs{state="completed"} 1.0' in text
    assert 'comfy_workshop_queue_depth{lane="normal"} 0.0' in text
    assert 'comfy_workshop_workers{state="online"} 1.0' in text
    assert "comfy_workshop_wait_seconds_count 1.0" in text
    assert "comfy_workshop_run_seconds_count 1.0" in text
    assert "comfy_workshop_event_lag_seconds_count" in text
    assert "comfy_workshop_websocket_clients 0.0" in text
    assert "comfy_workshop_output_bytes_total" in text


async def test_the_dashboard_page_is_for_the_instructor_only(
    alice: httpx.AsyncClient,
    nobody: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
) -> None:
    page = await teacher.get("/admin/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert (await alice.get("/admin/")).status_code == 403
    assert (await alice.get("/admin/static/dashboard.js")).status_code == 403
    redirect = await nobody.get("/admin/")
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/login")
    assert (await teacher.get("/admin/static/%2e%2e/%2e%2e/pyproject.toml")).status_code == 404


@contextlib.asynccontextmanager
async def serving_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own settings with the usual accounts, and a client without credentials."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        for name, role in ACCOUNTS.items():
            await application.state.accounts.add(name, role, PASSWORD)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://qm") as client:
            yield client


async def test_metrics_are_for_the_instructor_or_a_scraper_with_the_token(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    token = "scraper-token-0123456789"
    settings = make_settings(redis_server, prefix, data_dir=tmp_path, metrics_token=token)
    async with serving_app(settings) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers=basic("user001"))).status_code == 403
        wrong = {"Authorization": "Bearer not-the-token-at-all"}
        assert (await client.get("/metrics", headers=wrong)).status_code == 401
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert right.status_code == 200 and "comfy_workshop_jobs" in right.text
        assert (await client.get("/metrics", headers=basic("teacher"))).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/redoc"])
async def test_the_api_description_is_the_instructors(
    nobody: httpx.AsyncClient, alice: httpx.AsyncClient, teacher: httpx.AsyncClient, path: str
) -> None:
    if path == "/redoc":  # not served at all
        assert (await teacher.get(path, follow_redirects=True)).status_code == 404
        return
    assert (await nobody.get(path)).status_code == 401
    assert (await alice.get(path)).status_code == 403
    assert (await teacher.get(path)).status_code == 200
