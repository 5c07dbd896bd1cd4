"""The dashboard's queue and worker controls over real HTTP: a drained worker undrained, and a
paused queue that keeps its positions and estimates so that reordering it shows."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.gpu import Gpu
from tests.support.graphs import simple_prompt


async def submit(client: httpx.AsyncClient, user: str) -> str:
    r = await client.post(f"/{user}/api/prompt", json={"prompt": simple_prompt()})
    assert r.status_code == 200, r.text
    job_id: str = r.json()["prompt_id"]
    return job_id


async def state(teacher: httpx.AsyncClient) -> dict[str, Any]:
    r = await teacher.get("/admin/api/state")
    assert r.status_code == 200
    found: dict[str, Any] = r.json()
    return found


async def test_a_drained_worker_is_undrained_and_takes_jobs_again(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    assert (await teacher.post("/admin/api/workers/gpu1/drain")).status_code == 200
    job_id = await submit(alice, "user001")
    r = await online_gpu.client.post("/worker/v1/claim", params={"wait": 0})
    assert r.status_code == 409  # draining: it takes nothing
    assert (await teacher.post("/admin/api/workers/gpu1/resume")).status_code == 200
    [worker] = (await state(teacher))["workers"]
    assert worker["state"] == "online"
    assert (await online_gpu.claim())["id"] == job_id


async def test_undrain_is_the_instructors_and_names_a_known_worker(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    assert (await alice.post("/admin/api/workers/gpu1/resume")).status_code == 403
    r = await teacher.post("/admin/api/workers/nope/resume")
    assert r.status_code == 404
    [worker] = (await state(teacher))["workers"]
    assert worker["state"] == "online"  # nothing changed


async def test_a_paused_queue_keeps_positions_and_estimates(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    await teacher.post("/admin/api/queue/pause")
    first = await submit(alice, "user001")
    second = await submit(bob, "user002")
    rows = {j["id"]: j for j in (await state(teacher))["queue"]}
    assert (rows[first]["position"], rows[second]["position"]) == (1, 2)
    assert rows[first]["eta_start"] == 0.0
    assert rows[second]["eta_start"] > 0
    assert rows[second]["eta_finish"] > rows[second]["eta_start"]

    assert (await teacher.post(f"/admin/api/jobs/{second}/front")).status_code == 200
    rows = {j["id"]: j for j in (await state(teacher))["queue"]}
    assert (rows[second]["position"], rows[first]["position"]) == (1, 2)
    assert rows[second]["front"] is True
    assert rows[second]["eta_start"] == 0.0 < rows[first]["eta_start"]

    status = (await alice.get("/user001/api/workshop/status")).json()
    [mine] = status["jobs"]
    assert status["paused"] is True and mine["position"] == 2
    assert mine["wait"] == "paused" and mine["eta_start"] is None
