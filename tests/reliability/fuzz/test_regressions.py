"""The defects the fuzzers found, each pinned by the smallest case that showed it."""

from __future__ import annotations

import json

import pytest

from tests.reliability.fuzz.stack import Stack
from tests.reliability.fuzz.test_prompt_bodies import register
from tests.reliability.fuzz.test_uploads import PNG
from tests.reliability.fuzz.test_worker_api import HeldJob
from tests.support.graphs import SAVE

SAVE_WITH_A_BARE_NODE = {
    **SAVE,
    "3": {"class_type": "EmptyImage"},  # no `inputs`; not an output's input: never checked
}


@pytest.mark.parametrize("gpu", [False, True], ids=["held", "validated"])
def test_a_node_without_inputs_leaves_the_senders_queue_readable(stack: Stack, gpu: bool) -> None:
    """Found by test_prompt_bodies: such a prompt was accepted and stored as sent, and reading
    the job back (its `inputs` required) made the user's queue, history and jobs answer 500."""
    if gpu:
        register(stack)
    with stack.client("user001") as alice:
        r = alice.post("/user001/api/prompt", json={"prompt": SAVE_WITH_A_BARE_NODE})
        assert r.status_code == 200, r.text
        job = r.json()["prompt_id"]
        for path in ("/user001/api/queue", "/user001/api/history", "/user001/api/jobs"):
            assert alice.get(path).status_code == 200, path
        assert alice.get(f"/user001/api/jobs/{job}").json()["id"] == job
    with stack.client("teacher") as teacher:
        assert teacher.get("/admin/api/state").status_code == 200


def test_an_upload_named_like_an_existing_folder_gets_a_free_name(stack: Stack) -> None:
    """Found by test_uploads: the same-bytes check opened the folder `Nk` as a file
    (IsADirectoryError, 500) instead of passing on to `Nk (1)`."""
    with stack.client("user001") as alice:
        r = alice.post(
            "/user001/api/upload/image",
            files={"image": ("a.png", PNG, "image/png")},
            data={"subfolder": "Nk"},
        )
        assert r.status_code == 200, r.text
        r = alice.post("/user001/api/upload/image", files={"image": ("Nk", PNG, "image/png")})
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "Nk (1)", "subfolder": "", "type": "input"}
    inputs = stack.data_dir / "inputs" / "user001"
    assert (inputs / "Nk (1)").read_bytes() == PNG
    assert (inputs / "Nk" / "a.png").read_bytes() == PNG


@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_a_body_that_is_not_utf8_is_a_422_on_every_json_route(
    stack: Stack, content_type: str | None
) -> None:
    """Found by test_worker_api: a JSON-bodied route given bytes that are not UTF-8, without
    a JSON content type, validated and echoed them as bytes, and FastAPI's 422 handler
    raised UnicodeDecodeError on them (a 500), on the worker API and the admin API alike."""
    headers = {"Content-Type": content_type} if content_type else {}
    with stack.worker() as gpu, stack.client("teacher") as teacher:
        for client, path in ((gpu, "/worker/v1/register"), (teacher, "/admin/api/broadcast")):
            r = client.post(path, content=b'"\xff\x80"', headers=headers)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["detail"][0]["input"] == '"\ufffd\ufffd"'


def test_a_number_past_a_doubles_range_in_a_report_is_a_422(stack: Stack) -> None:
    """Found by test_worker_api: `1e400` (or an attempt of 10**400) in a report, a failure or
    a completion reached a Lua script, whose cjson made it inf and could not encode it: a 503
    "the queue store is not reachable", which tells an agent to retry the same request."""
    register(stack)
    held = HeldJob(stack)
    job, big = held.current(), 10**400
    report = {"attempt": job["attempt"], "type": "job.progress", "data": {"value": big}}
    calls = [
        ("events", report),
        ("events", {**report, "attempt": big, "data": {}}),
        ("complete", {"attempt": big}),
        ("fail", {"attempt": job["attempt"], "error": {"type": "x", "message": "y", "n": big}}),
    ]
    for route, body in calls:
        r = held.gpu.post(
            f"/worker/v1/jobs/{job['id']}/{route}",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422, (route, r.text)
    seed = {**report, "data": {"value": 2**64 - 1, "max": 2**64 - 1}}  # ComfyUI's largest seed
    r = held.gpu.post(f"/worker/v1/jobs/{job['id']}/events", json=seed)
    assert r.status_code == 204, r.text
    with stack.client("user001") as alice:
        assert alice.get(f"/user001/api/jobs/{job['id']}").json()["status"] == "in_progress"
    held.gpu.close()
