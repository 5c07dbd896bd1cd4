"""ComfyUI's queue API per participant: prompt, queue, interrupt, history, jobs, status.

The worker side is driven through the real worker API (tokens, claim, reports, complete), so
each test sees the participant's view of a job as it moves through the real queue.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI

from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Job, JobStatus, Lane
from queue_manager.service.queue import QueueService
from tests.support.gpu import BUNDLED, Gpu
from tests.support.graphs import simple_prompt


def service_of(app: FastAPI) -> QueueService:
    service: QueueService = app.state.service
    return service


async def job_of(app: FastAPI, owner: str, job_id: str) -> Job:
    return await service_of(app).user_job(UserId(owner), JobId(job_id))


async def queue_prompt(client: httpx.AsyncClient, prompt: Any, **extra: Any) -> httpx.Response:
    return await client.post("/user001/api/prompt", json={"prompt": prompt, **extra})


# -- submitting ---------------------------------------------------------------------------


async def test_before_any_gpu_a_prompt_is_queued_and_held_with_a_reason(
    alice: httpx.AsyncClient,
) -> None:
    r = await queue_prompt(alice, simple_prompt(), client_id="page-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"prompt_id", "number", "node_errors"}
    status = (await alice.get("/user001/api/workshop/status")).json()
    [job] = status["jobs"]
    assert job["prompt_id"] == body["prompt_id"]
    assert job["status"] == "held"
    assert "GPU" in job["detail"]


async def test_with_a_worker_catalogue_prompts_are_validated_like_comfyui(
    alice: httpx.AsyncClient,
    gpu: Gpu,
) -> None:
    await gpu.register()
    bad = simple_prompt()
    bad["1"]["inputs"]["width"] = 0  # below min
    r = await queue_prompt(alice, bad)
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["1"]["errors"][0]["type"] == "value_smaller_than_min"
    empty = await queue_prompt(alice, {})
    assert empty.json()["error"]["type"] == "prompt_no_outputs"
    missing = await alice.post("/user001/api/prompt", json={"client_id": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["type"] == "no_prompt"
    assert (await alice.get("/user001/api/prompt")).json() == {"exec_info": {"queue_remaining": 0}}
    ok = await queue_prompt(alice, simple_prompt())
    assert ok.status_code == 200
    assert (await alice.get("/user001/api/prompt")).json()["exec_info"]["queue_remaining"] == 1


async def test_identity_and_priority_come_from_the_login_never_the_body(
    app: FastAPI,
    alice: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
) -> None:
    r = await queue_prompt(alice, simple_prompt(), number=-100, front=True, user="teacher")
    job = await job_of(app, "user001", r.json()["prompt_id"])
    assert job.user == "user001" and job.lane is Lane.NORMAL
    r = await teacher.post("/teacher/api/prompt", json={"prompt": simple_prompt()})
    job = await job_of(app, "teacher", r.json()["prompt_id"])
    assert job.user == "teacher" and job.lane is Lane.INSTRUCTOR


async def test_a_participant_cannot_use_another_participants_api(
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    nobody: httpx.AsyncClient,
) -> None:
    assert (
        await bob.post("/user001/api/prompt", json={"prompt": simple_prompt()})
    ).status_code == 404
    assert (await bob.get("/user001/api/queue")).status_code == 404
    assert (await nobody.get("/user001/api/queue")).status_code == 401
    assert (await bob.get("/nosuchuser/api/queue")).status_code == 404


async def test_oversized_and_malformed_requests_get_clear_errors_and_queue_nothing(
    app: FastAPI,
    alice: httpx.AsyncClient,
) -> None:
    huge = simple_prompt()
    huge["2"]["inputs"]["filename_prefix"] = "x" * 5_000_000
    r = await queue_prompt(alice, huge)
    assert r.status_code == 400 and "bytes" in r.json()["error"]["message"]
    r = await alice.post(
        "/user001/api/prompt", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = await alice.post("/user001/api/prompt", json=["a", "list"])
    assert r.status_code == 400
    assert await service_of(app).user_jobs(UserId("user001")) == []


async def test_over_the_per_user_limit_the_refusal_is_readable(
    app: FastAPI,
    alice: httpx.AsyncClient,
) -> None:
    await service_of(app).set_user_limits(UserId("user001"), 1, None, UserId("instructor"))
    assert (await queue_prompt(alice, simple_prompt())).status_code == 200
    r = await queue_prompt(alice, simple_prompt())
    assert r.status_code == 429
    assert "already have 1 job waiting" in r.json()["error"]["message"]


async def test_a_state_changing_request_from_another_origin_is_refused(
    alice: httpx.AsyncClient,
) -> None:
    r = await alice.post(
        "/user001/api/prompt",
        json={"prompt": simple_prompt()},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403
    same = await alice.post(
        "/user001/api/prompt",
        json={"prompt": simple_prompt()},
        headers={"Origin": "http://testserver"},
    )
    assert same.status_code == 200


# -- queue, interrupt, history, jobs --------------------------------------------------------


async def test_queue_delete_and_clear_touch_only_the_users_waiting_jobs(
    app: FastAPI,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
) -> None:
    a1 = (await queue_prompt(alice, simple_prompt())).json()["prompt_id"]
    a2 = (await queue_prompt(alice, simple_prompt())).json()["prompt_id"]
    b1 = (await bob.post("/user002/api/prompt", json={"prompt": simple_prompt()})).json()[
        "prompt_id"
    ]
    queue = (await alice.get("/user001/api/queue")).json()
    assert [item[1] for item in queue["queue_pending"]] == [a1, a2]
    assert queue["queue_running"] == []
    # Bob names Alice's job: nothing happens to it.
    r = await bob.post("/user002/api/queue", json={"delete": [a1]})
    assert r.status_code == 200 and r.content == b""
    assert (await job_of(app, "user001", a1)).status is JobStatus.QUEUED
    await alice.post("/user001/api/queue", json={"delete": [a1, b1]})
    assert (await job_of(app, "user001", a1)).status is JobStatus.CANCELLED
    assert (await job_of(app, "user002", b1)).status is JobStatus.QUEUED
    await alice.post("/user001/api/queue", json={"clear": True})
    assert (await job_of(app, "user001", a2)).status is JobStatus.CANCELLED
    assert (await job_of(app, "user002", b1)).status is JobStatus.QUEUED


async def test_a_finished_job_reads_like_comfyuis_history_and_jobs_api(
    app: FastAPI,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    gpu: Gpu,
) -> None:
    await gpu.register()
    workflow = {"extra_pnginfo": {"workflow": {"id": "wf-1", "nodes": []}}}
    r = await queue_prompt(alice, simple_prompt(), client_id="page-1", extra_data=workflow)
    job_id = r.json()["prompt_id"]
    job = await gpu.claim()
    assert job["id"] == job_id
    running = (await alice.get("/user001/api/queue")).json()["queue_running"]
    assert running[0][1] == job_id and running[0][4] == ["2"]
    await gpu.tell(job, "job.started")
    await gpu.tell(job, "job.executing", node="2")
    await gpu.tell(job, "job.executed", node="3", files=[], output={"text": ["40"]})
    listed = (await alice.get("/user001/api/jobs", params={"status": "in_progress,pending"})).json()
    assert [j["status"] for j in listed["jobs"]] == ["in_progress"]
    out = {
        "filename": "test_00001_.png",
        "subfolder": "cw",
        "type": "output",
        "size": 10,
        "node_id": "2",
        "media": "images",
    }
    await gpu.store(job, out)
    await gpu.complete(job)

    entry = (await alice.get(f"/user001/api/history/{job_id}")).json()[job_id]
    assert entry["prompt"][0] == r.json()["number"]
    assert entry["prompt"][3]["client_id"] == "page-1"
    assert entry["outputs"] == {
        "2": {"images": [{"filename": "test_00001_.png", "subfolder": "cw", "type": "output"}]},
        "3": {"text": ["40"]},
    }
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    detail = (await alice.get(f"/user001/api/jobs/{job_id}")).json()
    assert detail["status"] == "completed"
    assert detail["workflow_id"] == "wf-1"
    assert detail["preview_output"]["nodeId"] == "2"
    assert detail["outputs_count"] == 2
    history = (await alice.get("/user001/api/history", params={"max_items": 64})).json()
    assert list(history) == [job_id]
    # Bob sees nothing of it, with ComfyUI's "unknown" answers.
    assert (await bob.get(f"/user002/api/history/{job_id}")).json() == {}
    missing = await bob.get(f"/user002/api/jobs/{job_id}")
    assert missing.status_code == 404 and missing.json() == {"error": "Job not found"}
    assert (await bob.get("/user002/api/history")).json() == {}
    # History delete hides it from the participant.
    await alice.post("/user001/api/history", json={"delete": [job_id]})
    assert (await alice.get("/user001/api/history")).json() == {}


async def test_interrupt_stops_only_the_users_own_running_job(
    app: FastAPI,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    gpu: Gpu,
) -> None:
    await gpu.register()
    job_id = (await queue_prompt(alice, simple_prompt())).json()["prompt_id"]
    await gpu.claim()
    await bob.post("/user002/api/interrupt", json={"prompt_id": job_id})
    await bob.post("/user002/api/interrupt")
    assert (await job_of(app, "user001", job_id)).status is JobStatus.RUNNING
    await alice.post("/user001/api/interrupt", json={"prompt_id": "some-other-id"})
    assert (await job_of(app, "user001", job_id)).status is JobStatus.RUNNING
    r = await alice.post("/user001/api/interrupt", json={})
    assert r.status_code == 200
    assert (await job_of(app, "user001", job_id)).status is JobStatus.CANCELLED
    listed = (await alice.get("/user001/api/jobs")).json()["jobs"]
    assert listed[0]["status"] == "cancelled"
    entry = (await alice.get(f"/user001/api/history/{job_id}")).json()[job_id]
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"


async def test_jobs_query_errors_match_comfyui(alice: httpx.AsyncClient) -> None:
    r = await alice.get("/user001/api/jobs", params={"status": "bogus"})
    assert r.status_code == 400
    assert r.json() == {
        "error": "Invalid status value(s): bogus. "
        "Valid values: pending, in_progress, completed, failed, cancelled"
    }
    r = await alice.get("/user001/api/jobs", params={"limit": "0"})
    assert r.json() == {"error": "limit must be a positive integer"}


async def test_both_route_forms_answer(alice: httpx.AsyncClient) -> None:
    for path in ("/user001/queue", "/user001/api/queue", "/user001/history", "/user001/api/jobs"):
        assert (await alice.get(path)).status_code == 200, path


# -- the page's server questions --------------------------------------------------------------


async def test_object_info_comes_from_the_workers_with_the_users_own_inputs(
    app: FastAPI,
    alice: httpx.AsyncClient,
    gpu: Gpu,
) -> None:
    fallback = (await alice.get("/user001/api/object_info")).json()
    assert "KSampler" in fallback
    assert fallback["LoadImage"]["input"]["required"]["image"][0] == []
    info = json.loads(json.dumps(BUNDLED))
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = ["sd15.safetensors"]
    info["LoadImage"]["input"]["required"]["image"][0] = ["worker-secret.png"]
    await gpu.register(info)
    seen = (await alice.get("/user001/api/object_info")).json()
    assert seen["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == [
        "sd15.safetensors"
    ]
    assert seen["LoadImage"]["input"]["required"]["image"][0] == []
    one = (await alice.get("/user001/api/object_info/LoadImage")).json()
    assert one["LoadImage"]["input"]["required"]["image"][0] == []
    assert (await alice.get("/user001/api/object_info/NoSuchNode")).json() == {}
    models = (await alice.get("/user001/api/models/checkpoints")).json()
    assert models == ["sd15.safetensors"]
    assert (await alice.get("/user001/api/models/nope")).status_code == 404


async def test_features_extensions_and_stats(alice: httpx.AsyncClient) -> None:
    features = (await alice.get("/user001/api/features")).json()
    assert features["supports_preview_metadata"] is True
    assert features["max_upload_size"] == 100 * 2**20
    entries = (await alice.get("/user001/api/extensions")).json()
    assert "/extensions/comfy-workshop/workshop.js" in entries
    assert all(e.startswith("/extensions/comfy-workshop/") and "/lib/" not in e for e in entries)
    stats = (await alice.get("/user001/api/system_stats")).json()
    assert set(stats) == {"system", "devices"}
    ext = await alice.get("/user001/extensions/comfy-workshop/workshop.js")
    assert ext.status_code == 200 and ext.headers["content-type"].startswith("text/javascript")
