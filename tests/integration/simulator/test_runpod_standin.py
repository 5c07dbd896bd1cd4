"""The RunPod worker-comfyui stand-in over real HTTP: /run -> /status -> COMPLETED with base64
pictures, /runsync, cold starts seen as IN_QUEUE, cancel, timeouts, failures and the key."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.graphs import sampler, simple_prompt
from tests.support.serverless import load_and_save, png, until_replica
from tests.support.waiting import until
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.pool import PoolOptions
from worker.simulator.runpod.api import RunPodOptions
from worker.simulator.runtime import SimulatorConfig

KEY = "rp-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SAVE_ANY = simple_prompt("rp/any")


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[LoadBalancedSimulator]:
    config = SimulatorConfig(step_delay=0.05)
    options = PoolOptions(replicas=1)
    async with LoadBalancedSimulator(tmp_path, config, options, runpod=RunPodOptions(KEY)) as sim:
        yield sim


@pytest.fixture
async def api(endpoint: LoadBalancedSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=endpoint.url, headers=AUTH, timeout=10) as client:
        yield client


async def until_status(api: httpx.AsyncClient, job_id: str, *wanted: str) -> dict[str, Any]:
    body: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal body
        body = (await api.get(f"/status/{job_id}")).json()
        return body["status"] in wanted

    await until(reached, what=f"job {job_id} {wanted}")
    return body


async def test_a_run_completes_with_its_pictures_in_base64(api: httpx.AsyncClient) -> None:
    upload = "data:image/png;base64," + base64.b64encode(png(20, 10)).decode()
    images = [{"name": "rp-in.png", "image": upload}]
    job = {"workflow": load_and_save("rp-in.png"), "images": images}
    queued = await api.post("/run", json={"input": job})
    done = await until_status(api, queued.json()["id"], "COMPLETED", "FAILED")

    assert queued.json()["status"] == "IN_QUEUE"
    assert done["status"] == "COMPLETED", done
    [image] = done["output"]["images"]
    assert image["type"] == "base64"
    assert image["filename"].startswith("loaded_")
    with Image.open(io.BytesIO(base64.b64decode(image["data"]))) as picture:
        assert picture.size == (20, 10)
    assert done["workerId"] == "replica-0"
    assert isinstance(done["delayTime"], int) and isinstance(done["executionTime"], int)
    assert "errors" not in done["output"]


async def test_runsync_answers_with_the_finished_job(api: httpx.AsyncClient) -> None:
    answer = await api.post("/runsync", json={"input": {"workflow": simple_prompt("rp/sync")}})

    assert answer.status_code == 200
    assert answer.json()["status"] == "COMPLETED"
    assert len(answer.json()["output"]["images"]) == 1


async def test_a_cold_start_is_part_of_a_jobs_delay(tmp_path: Path) -> None:
    options = PoolOptions(replicas=1, cold_start=0.3)
    async with (
        LoadBalancedSimulator(tmp_path, None, options, runpod=RunPodOptions(KEY)) as sim,
        httpx.AsyncClient(base_url=sim.url, headers=AUTH, timeout=10) as api,
    ):
        queued = await api.post("/run", json={"input": {"workflow": simple_prompt()}})
        job_id = queued.json()["id"]
        done = await until_status(api, job_id, "COMPLETED", "FAILED")

    assert done["status"] == "COMPLETED"
    assert done["delayTime"] >= 300  # the cold start is part of the delay


async def test_a_job_given_to_a_starting_worker_stays_in_queue_and_can_be_cancelled(
    tmp_path: Path,
) -> None:
    options = PoolOptions(replicas=1, cold_start=60)
    async with (
        LoadBalancedSimulator(tmp_path, None, options, runpod=RunPodOptions(KEY)) as sim,
        httpx.AsyncClient(base_url=sim.url, headers=AUTH, timeout=10) as api,
    ):
        job_id = (await api.post("/run", json={"input": {"workflow": SAVE_ANY}})).json()["id"]
        await until_replica(api, 0, state="starting")
        queued = (await api.get(f"/status/{job_id}")).json()
        health = (await api.get("/health")).json()
        cancelled = (await api.post(f"/cancel/{job_id}")).json()
        after = (await api.get(f"/status/{job_id}")).json()

    assert queued == {"id": job_id, "status": "IN_QUEUE"}
    assert health["jobs"]["inQueue"] == 1
    assert health["workers"]["initializing"] == 1
    assert cancelled == {"id": job_id, "status": "CANCELLED"}
    assert after["status"] == "CANCELLED"


async def test_cancelling_a_running_job_interrupts_its_prompt(api: httpx.AsyncClient) -> None:
    job_id = (await api.post("/run", json={"input": {"workflow": sampler(400)}})).json()["id"]
    await until_status(api, job_id, "IN_PROGRESS")
    await until_replica(api, 0, queue_remaining=1)  # the prompt is on the replica
    cancelled = await api.post(f"/cancel/{job_id}")
    await until_replica(api, 0, queue_remaining=0)  # interrupted, not run to its end
    status = (await api.get(f"/status/{job_id}")).json()
    health = (await api.get("/health")).json()

    assert cancelled.json() == {"id": job_id, "status": "CANCELLED"}
    assert status["status"] == "CANCELLED"
    assert health["workers"]["running"] == 0


async def test_a_job_past_its_execution_timeout_is_timed_out(api: httpx.AsyncClient) -> None:
    body = {"input": {"workflow": sampler(400)}, "policy": {"executionTimeout": 300}}
    job_id = (await api.post("/run", json=body)).json()["id"]
    done = await until_status(api, job_id, "TIMED_OUT", "COMPLETED", "FAILED")
    await until_replica(api, 0, queue_remaining=0)

    assert done["status"] == "TIMED_OUT"


@pytest.mark.parametrize(
    ("job", "error"),
    [
        ({"workflow": {"1": {"class_type": "Nope", "inputs": {}}}}, "Workflow validation failed"),
        ({"images": []}, "Missing 'workflow' parameter"),
        ({"workflow": SAVE_ANY, "images": [{"name": "x.png"}]}, "'images' must be a list"),
    ],
)
async def test_a_job_the_handler_cannot_run_fails_with_its_reason(
    api: httpx.AsyncClient, job: dict[str, Any], error: str
) -> None:
    job_id = (await api.post("/run", json={"input": job})).json()["id"]
    done = await until_status(api, job_id, "FAILED", "COMPLETED")

    assert done["status"] == "FAILED"
    assert done["error"].startswith(error)


async def test_a_node_that_fails_fails_the_job_with_the_details(tmp_path: Path) -> None:
    config = SimulatorConfig(fail_class_types=frozenset({"SaveImage"}))
    async with (
        LoadBalancedSimulator(tmp_path, config, PoolOptions(1), runpod=RunPodOptions(KEY)) as sim,
        httpx.AsyncClient(base_url=sim.url, headers=AUTH, timeout=10) as api,
    ):
        done = (await api.post("/runsync", json={"input": {"workflow": SAVE_ANY}})).json()

    assert done["status"] == "FAILED"
    assert done["error"] == "Job processing failed"
    assert "Node Type: SaveImage" in done["output"]["details"][0]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic cnA6cnA="}],
)
async def test_a_request_without_the_key_is_refused(
    endpoint: LoadBalancedSimulator, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=endpoint.url, headers=headers, timeout=10) as client:
        answers = [
            await client.post("/run", json={"input": {"workflow": SAVE_ANY}}),
            await client.get("/health"),
            await client.get("/status/x"),
        ]

    assert [a.status_code for a in answers] == [401, 401, 401]


@pytest.mark.parametrize("header", [KEY, f"bearer {KEY}"])
async def test_the_key_is_taken_bare_too_as_runpod_takes_it(
    endpoint: LoadBalancedSimulator, header: str
) -> None:
    async with httpx.AsyncClient(base_url=endpoint.url, timeout=10) as client:
        answer = await client.get("/health", headers={"Authorization": header})

    assert answer.status_code == 200


async def test_an_unknown_job_is_404_and_a_body_without_input_is_400(
    api: httpx.AsyncClient,
) -> None:
    unknown = await api.get("/status/nope")
    no_input = await api.post("/run", json={"workflow": SAVE_ANY})

    assert unknown.status_code == 404
    assert no_input.status_code == 400


async def test_a_finished_job_is_forgotten_after_its_result_ttl(tmp_path: Path) -> None:
    runpod = RunPodOptions(KEY, result_ttl=0.2)
    async with (
        LoadBalancedSimulator(tmp_path, None, PoolOptions(1), runpod=runpod) as sim,
        httpx.AsyncClient(base_url=sim.url, headers=AUTH, timeout=10) as api,
    ):
        job_id = (await api.post("/run", json={"input": {"workflow": SAVE_ANY}})).json()["id"]
        await until_status(api, job_id, "COMPLETED")

        async def forgotten() -> bool:
            return (await api.get(f"/status/{job_id}")).status_code == 404

        await until(forgotten, what="the result expired")
