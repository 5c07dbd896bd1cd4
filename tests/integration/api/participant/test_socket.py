"""`/{user}/ws` over a real server and a real WebSocket client: ComfyUI's messages for the
user's own jobs, in ComfyUI's order, and nothing of anyone else's."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from queue_manager.core.ids import UserId
from tests.support.gpu import Gpu
from tests.support.graphs import simple_prompt
from tests.support.participants import PASSWORD, basic

FLAGS = json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})


async def connect(base: str, name: str, path: str | None = None, **kw: Any) -> ClientConnection:
    url = base.replace("http", "ws", 1) + (path or f"/{name}/ws")
    return await websockets.connect(url, additional_headers=basic(name), **kw)


async def next_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    """The next JSON frame, skipping the extension's `workshop.status`."""
    while True:
        frame = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(frame, bytes):
            return {"type": "<binary>", "data": frame}
        message: dict[str, Any] = json.loads(frame)
        if message["type"] != "workshop.status":
            return message


def status(queue_remaining: int) -> dict[str, Any]:
    return {
        "type": "status",
        "data": {"status": {"exec_info": {"queue_remaining": queue_remaining}}},
    }


async def kinds_before(ws: ClientConnection, frame: dict[str, Any]) -> list[str]:
    """The types of the frames that came before `frame` (read up to and including it)."""
    kinds = []
    while (message := await next_json(ws)) != frame:
        kinds.append(message["type"])
    return kinds


async def until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while (m := await next_json(ws))["type"] != kind:
        pass
    return m


async def test_the_first_frame_is_status_with_a_sid_and_flags_are_negotiated(base: str) -> None:
    async with await connect(base, "user001") as ws:
        first = await next_json(ws)
        assert first["type"] == "status"
        assert len(first["data"]["sid"]) == 32
        assert first["data"]["status"]["exec_info"]["queue_remaining"] == 0
        await ws.send(FLAGS)
        flags = await next_json(ws)
        assert flags["type"] == "feature_flags"
        assert flags["data"]["supports_preview_metadata"] is True
    async with await connect(base, "user001", "/user001/ws?clientId=my-tab") as ws:
        assert (await next_json(ws))["data"]["sid"] == "my-tab"


@pytest.mark.parametrize(
    ("name", "path", "headers"),
    [
        ("user002", "/user001/ws", {}),  # someone else's socket
        ("user001", "/user001/ws", {"Origin": "http://evil.example"}),  # cross-site page
    ],
)
async def test_other_users_and_other_origins_cannot_open_the_socket(
    base: str, name: str, path: str, headers: dict[str, str]
) -> None:
    url = base.replace("http", "ws", 1) + path
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, additional_headers={**basic(name), **headers})
    assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(url)  # nobody


async def test_a_run_gives_comfyuis_messages_in_order_to_the_submitting_page_only(
    base: str,
    online_gpu: Gpu,
) -> None:
    page = await connect(base, "user001", "/user001/ws?clientId=tab-a")
    other_tab = await connect(base, "user001", "/user001/ws?clientId=tab-b")
    bob = await connect(base, "user002")
    for ws in (page, other_tab, bob):
        await next_json(ws)
    await page.send(FLAGS)
    await until(page, "feature_flags")
    async with httpx.AsyncClient(base_url=base, auth=("user001", PASSWORD)) as alice:
        r = await alice.post(
            "/user001/api/prompt", json={"prompt": simple_prompt(), "client_id": "tab-a"}
        )
        job_id = r.json()["prompt_id"]
        assert (await next_json(page)) == {
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": 1}}},
        }
        job = await online_gpu.claim()
        await online_gpu.tell(job, "job.started")
        await online_gpu.tell(job, "job.executing", node="1")
        await online_gpu.tell(job, "job.progress", value=3, max=10, node="1")
        preview = b"\x89PNG fake preview bytes"
        r = await online_gpu.client.put(
            f"/worker/v1/jobs/{job_id}/preview",
            params={"attempt": job["attempt"], "mime": "image/png"},
            content=preview,
        )
        assert r.status_code == 204
        await online_gpu.tell(job, "job.executing", node="2")
        out = {
            "filename": "t_00001_.png",
            "subfolder": "cw",
            "type": "output",
            "size": 3,
            "node_id": "2",
            "media": "images",
        }
        await online_gpu.store(job, out)
        await online_gpu.tell(job, "job.executed", node="2", output={})
        await online_gpu.complete(job)

    kinds = []
    binary: bytes | None = None
    while True:
        m = await next_json(page)
        if m["type"] == "<binary>":
            binary = m["data"]
            kinds.append("<binary>")
            continue
        kinds.append(m["type"])
        if m["type"] == "executing" and m["data"]["node"] is None:
            assert m["data"]["prompt_id"] == job_id
            break
        if m["type"] == "executed":
            assert m["data"]["output"] == {
                "images": [{"filename": "t_00001_.png", "subfolder": "cw", "type": "output"}]
            }
        if m["type"] == "progress":
            assert m["data"] == {"value": 3, "max": 10, "prompt_id": job_id, "node": "1"}
    assert kinds == [
        "status",  # taken by the worker
        "execution_start",
        "execution_cached",
        "progress_state",
        "executing",
        "progress",
        "<binary>",
        "progress_state",
        "executing",
        "executed",
        "execution_success",
        "status",
        "executing",
    ]
    assert binary is not None
    kind, length = struct.unpack_from(">II", binary)
    assert kind == 4
    meta = json.loads(binary[8 : 8 + length])
    assert meta["prompt_id"] == job_id and meta["node_id"] == "1"
    assert binary[8 + length :] == preview
    # The other tab of the same user sees only queue changes, up to the run's end (the queue
    # is empty again); Bob sees nothing at all. A job each of them submits next marks the end
    # of what the run could have sent them: a socket gets its user's events in stream order.
    assert set(await kinds_before(other_tab, status(0))) == {"status"}
    async with httpx.AsyncClient(base_url=base, auth=("user001", PASSWORD)) as alice:
        await alice.post("/user001/api/prompt", json={"prompt": simple_prompt()})
    async with httpx.AsyncClient(base_url=base, auth=("user002", PASSWORD)) as bob_http:
        await bob_http.post("/user002/api/prompt", json={"prompt": simple_prompt()})
    assert await kinds_before(other_tab, status(1)) == []
    assert await kinds_before(bob, status(1)) == []
    for ws in (page, other_tab, bob):
        await ws.close()


async def test_a_reload_mid_run_catches_up_with_the_running_node(
    base: str, online_gpu: Gpu
) -> None:
    async with httpx.AsyncClient(base_url=base, auth=("user001", PASSWORD)) as alice:
        r = await alice.post(
            "/user001/api/prompt", json={"prompt": simple_prompt(), "client_id": "tab-a"}
        )
    job_id = r.json()["prompt_id"]
    job = await online_gpu.claim()
    await online_gpu.tell(job, "job.started")
    await online_gpu.tell(job, "job.executing", node="1")
    await online_gpu.tell(job, "job.progress", value=5, max=20, node="1")
    async with await connect(base, "user001", "/user001/ws?clientId=tab-a") as page:
        assert (await next_json(page))["type"] == "status"
        assert (await next_json(page))["type"] == "execution_start"
        await until(page, "executing")
        progress = await until(page, "progress")
        assert progress["data"] == {"value": 5, "max": 20, "prompt_id": job_id, "node": "1"}


async def test_the_extension_gets_positions_and_the_broadcast(
    app: FastAPI,
    base: str,
) -> None:
    async with await connect(base, "user001") as page:
        await page.send(json.dumps({"type": "workshop.subscribe"}))
        async with httpx.AsyncClient(base_url=base, auth=("user001", PASSWORD)) as alice:
            await alice.post("/user001/api/prompt", json={"prompt": simple_prompt()})
        await app.state.service.broadcast("Break until 11:00", UserId("instructor"))
        while True:
            frame = json.loads(await asyncio.wait_for(page.recv(), 5))
            if frame["type"] == "workshop.status" and frame["data"]["broadcast"]:
                break
        assert frame["data"]["broadcast"] == "Break until 11:00"
        assert len(frame["data"]["jobs"]) == 1
