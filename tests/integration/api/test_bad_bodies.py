"""Bodies that are not what they claim: every JSON body is read by one reader, and a body
nested absurdly deep (Python's parser would raise RecursionError: a 500 and a stack dump) is a
clear 400 wherever JSON is read, queueing and storing nothing."""

from __future__ import annotations

import httpx
import pytest

DEEP = b"[" * 100_000 + b"]" * 100_000  # parses nowhere: far past the recursion limit
NESTED = b'{"a":' * 500 + b"1" + b"}" * 500  # parses, but no ComfyUI body nests like that


@pytest.mark.parametrize("body", [DEEP, NESTED], ids=["deep-array", "nested-object"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/user001/api/prompt"),
        ("POST", "/user001/prompt"),
        ("POST", "/user001/api/queue"),
        ("POST", "/user001/api/interrupt"),
        ("POST", "/user001/api/history"),
        ("POST", "/user001/api/settings"),
        ("POST", "/user001/api/settings/Comfy.ColorPalette"),
    ],
)
async def test_a_deeply_nested_body_is_a_clear_400(
    alice: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    settings_before = (await alice.get("/user001/api/settings")).json()
    r = await alice.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    if path.endswith("deep.json"):  # a saved file is the user's bytes: stored as they are
        assert r.status_code in (200, 413), r.text
        return
    assert r.status_code == 400, r.text
    assert (await alice.get("/user001/api/queue")).json() == {
        "queue_running": [],
        "queue_pending": [],
    }
    assert (await alice.get("/user001/api/settings")).json() == settings_before


async def test_a_prompt_nested_deeper_than_any_workflow_is_refused_with_a_message(
    alice: httpx.AsyncClient,
) -> None:
    r = await alice.post("/user001/api/prompt", content=NESTED)
    assert r.status_code == 400
    assert "nests deeper than" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/worker/v1/register", {}),
        ("/worker/v1/heartbeat", {}),
        ("/worker/v1/object_info", {}),
    ],
)
async def test_the_worker_api_answers_a_nested_body_with_400(
    app: object, gpu: object, path: str, headers: dict[str, str]
) -> None:
    client: httpx.AsyncClient = gpu.client  # type: ignore[attr-defined]
    method = "PUT" if path.endswith("object_info") else "POST"
    r = await client.request(method, path, content=DEEP, headers=headers)
    assert r.status_code in (400, 422), r.text


async def test_the_instructors_controls_answer_a_nested_body_with_400(
    teacher: httpx.AsyncClient,
) -> None:
    r = await teacher.post("/admin/api/broadcast", content=DEEP)
    assert r.status_code in (400, 422), r.text
