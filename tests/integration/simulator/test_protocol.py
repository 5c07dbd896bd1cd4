"""The simulator against the recorded protocol of a real ComfyUI 0.25.0: HTTP answers and the
order of WebSocket messages for the recorded workflows (tests/data/comfyui-reference/captures)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support.captures import capture
from tests.support.simulator import RunningSimulator, serve_simulator
from worker.simulator.runtime import SimulatorConfig


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[RunningSimulator]:
    async with serve_simulator(tmp_path / "sim", SimulatorConfig(step_delay=0)) as running:
        yield running


@pytest.fixture
async def http(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        yield client


async def run_and_collect(
    sim: RunningSimulator, http: httpx.AsyncClient, prompt: dict[str, Any], client_id: str = "c1"
) -> tuple[str, list[dict[str, Any] | bytes]]:
    """Submit `prompt` with a socket open; every message until the prompt is done."""
    async with websockets.connect(f"{sim.ws_url}?clientId={client_id}") as ws:
        first = json.loads(await ws.recv())
        assert first["data"]["sid"] == client_id
        r = await http.post("/api/prompt", json={"prompt": prompt, "client_id": client_id})
        assert r.status_code == 200, r.text
        prompt_id = r.json()["prompt_id"]
        seen: list[dict[str, Any] | bytes] = [first]
        while True:
            raw = await asyncio.wait_for(ws.recv(), 20)
            msg = raw if isinstance(raw, bytes) else json.loads(raw)
            seen.append(msg)
            if (
                isinstance(msg, dict)
                and msg["type"] == "executing"
                and msg["data"]["node"] is None
                and msg["data"]["prompt_id"] == prompt_id
            ):
                return prompt_id, seen


_IDLE = {"status": {"exec_info": {"queue_remaining": 0}}}
Frame = dict[str, Any] | bytes


def _is(frame: Frame, kind: str, **data: Any) -> bool:
    if isinstance(frame, bytes) or frame["type"] != kind:
        return False
    return all(frame["data"].get(k) == v for k, v in data.items())


async def read_types(ws: ClientConnection, last: Callable[[Frame], bool]) -> list[str]:
    """The types of the frames read until one that `last` is true of (that one included)."""
    kinds = []
    while True:
        raw = await asyncio.wait_for(ws.recv(), 10)
        frame: Frame = raw if isinstance(raw, bytes) else json.loads(raw)
        kinds.append("binary" if isinstance(frame, bytes) else str(frame["type"]))
        if last(frame):
            return kinds


def types(messages: list[dict[str, Any] | bytes]) -> list[str]:
    return [m["type"] if isinstance(m, dict) else "binary" for m in messages]


def recorded_types(name: str) -> list[str]:
    events = capture(name)["events"]
    return [
        e["json"]["type"] if e["kind"] == "text" else "binary"
        for e in events
        if e["kind"] in ("text", "binary")
    ]


@pytest.mark.parametrize("name", ["ws_run_success.json", "ws_run_loadimage.json"])
async def test_websocket_messages_follow_the_recorded_order(
    sim: RunningSimulator, http: httpx.AsyncClient, name: str
) -> None:
    recorded = capture(name)
    workflow = recorded["workflow"]
    if name == "ws_run_loadimage.json":
        await _upload_inputs_for(http, workflow)
    _, seen = await run_and_collect(sim, http, workflow)
    # The capture's socket also saw its own "status" after connecting and the two statuses of
    # the POST; compare from execution_start on, where the run itself speaks.
    expected = recorded_types(name)
    start = expected.index("execution_start")
    assert types(seen)[types(seen).index("execution_start") :] == expected[start:]


async def _upload_inputs_for(http: httpx.AsyncClient, workflow: dict[str, Any]) -> None:
    import io

    from PIL import Image

    for node in workflow.values():
        if node["class_type"] == "LoadImage":
            name = node["inputs"]["image"]
            sub, _, fname = name.rpartition("/")
            buf = io.BytesIO()
            Image.new("RGBA", (20, 10), (200, 10, 10, 128)).save(buf, "PNG")
            r = await http.post(
                "/api/upload/image",
                files={"image": (fname, buf.getvalue(), "image/png")},
                data={"type": "input", "subfolder": sub},
            )
            assert r.status_code == 200


async def test_a_second_identical_run_is_served_from_cache(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    workflow = capture("ws_run_fully_cached.json")["workflow"]
    await run_and_collect(sim, http, workflow)
    _, seen = await run_and_collect(sim, http, workflow)
    expected = recorded_types("ws_run_fully_cached.json")
    assert (
        types(seen)[types(seen).index("execution_start") :]
        == expected[expected.index("execution_start") :]
    )
    cached = next(m for m in seen if isinstance(m, dict) and m["type"] == "execution_cached")
    assert sorted(cached["data"]["nodes"]) == sorted(workflow)


async def test_prompt_without_client_id_sends_no_per_job_events(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    workflow = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    async with websockets.connect(f"{sim.ws_url}?clientId=bystander") as ws:
        await ws.recv()
        r = await http.post("/api/prompt", json={"prompt": workflow})
        prompt_id = r.json()["prompt_id"]
        # The run is over for this socket at the first status with an empty queue after the
        # prompt's own progress_state; then everything the server sent before its answer to a
        # first feature_flags frame has arrived (a socket's frames are sent in order).
        got = await read_types(ws, lambda f: _is(f, "progress_state", prompt_id=prompt_id))
        got += await read_types(ws, lambda f: f == {"type": "status", "data": _IDLE})
        await ws.send(json.dumps({"type": "feature_flags", "data": {}}))
        got += (await read_types(ws, lambda f: _is(f, "feature_flags")))[:-1]
    assert set(got) <= {"status", "progress_state", "progress", "binary"}


async def test_history_queue_and_jobs_report_a_finished_run(
    sim: RunningSimulator, http: httpx.AsyncClient
) -> None:
    workflow = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "t/run"},
        },
    }
    prompt_id, _ = await run_and_collect(sim, http, workflow)
    entry = (await http.get(f"/history/{prompt_id}")).json()[prompt_id]
    assert entry["status"]["status_str"] == "success"
    assert entry["outputs"]["2"]["images"] == [
        {"filename": "run_00001_.png", "subfolder": "t", "type": "output"}
    ]
    assert entry["prompt"][1] == prompt_id
    job = (await http.get(f"/api/jobs/{prompt_id}")).json()
    assert job["status"] == "completed"
    assert job["preview_output"]["filename"] == "run_00001_.png"
    assert (await http.get("/api/queue")).json() == {"queue_running": [], "queue_pending": []}
    view = await http.get("/api/view", params={"filename": "run_00001_.png", "subfolder": "t"})
    assert view.status_code == 200
    assert view.content.startswith(b"\x89PNG")
    ranged = await http.get(
        "/view",
        params={"filename": "run_00001_.png", "subfolder": "t"},
        headers={"Range": "bytes=0-15"},
    )
    assert ranged.status_code == 206
    assert len(ranged.content) == 16


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 404),
        ({"filename": "nothing.png"}, 404),
        ({"filename": "x.png", "type": "bogus"}, 400),
        ({"filename": "../x.png"}, 400),
        ({"filename": "/etc/passwd"}, 400),
        ({"filename": "passwd", "subfolder": "../../../../etc"}, 403),
    ],
)
async def test_view_refuses_like_comfyui(
    http: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    assert (await http.get("/view", params=params)).status_code == status


async def test_upload_naming_follows_comfyui(http: httpx.AsyncClient) -> None:
    async def up(data: bytes) -> dict[str, Any]:
        r = await http.post("/upload/image", files={"image": ("u.png", data, "image/png")})
        assert r.status_code == 200
        body: dict[str, Any] = r.json()
        return body

    assert (await up(b"one"))["name"] == "u.png"
    assert (await up(b"one"))["name"] == "u.png"  # same bytes: same name
    assert (await up(b"two"))["name"] == "u (1).png"
    assert (await http.post("/upload/image", files={"other": ("u.png", b"x")})).status_code == 400


@pytest.mark.parametrize(
    "name",
    [
        "get_features.json",
        "get_object_info_unknown_node.json",
        "get_history_item_unknown.json",
        "get_api_jobs_bad_status.json",
        "get_api_jobs_bad_limit.json",
        "get_api_jobs_item_unknown.json",
        "get_api_unknown_path.json",
        "get_view_no_filename.json",
        "get_view_dotdot_filename.json",
        "get_view_subfolder_traversal.json",
        "get_view_bad_type.json",
        "post_prompt_error_no_prompt.json",
        "post_prompt_error_non_uuid_prompt_id.json",
        "post_prompt_error_unknown_class.json",
        "post_prompt_error_no_outputs.json",
        "post_prompt_error_bad_inputs.json",
        "get_queue_idle.json",
        "get_prompt_idle.json",
        "get_embeddings.json",
    ],
)
async def test_recorded_exchanges_replay_with_the_same_answer(
    http: httpx.AsyncClient, name: str
) -> None:
    rec = capture(name)
    req, resp = rec["request"], rec["response"]
    r = await http.request(
        req["method"], req["path"], params=req.get("query"), json=req.get("json")
    )
    assert r.status_code == resp["status"]
    body = resp["body"]
    if body.get("kind") == "json":
        assert _canonical(r.json()) == _canonical(body["json"])


def _canonical(body: Any) -> Any:
    """ComfyUI reports a node's input errors in Python set order, which changes with every
    server process (post_prompt_error_bad_inputs): compare those lists as sets."""
    if isinstance(body, dict) and isinstance(body.get("node_errors"), dict):
        for node in body["node_errors"].values():
            node["errors"] = sorted(node["errors"], key=lambda e: json.dumps(e, sort_keys=True))
    return body
