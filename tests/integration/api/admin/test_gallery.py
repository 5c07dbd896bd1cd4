"""The instructor's gallery and "show everyone" over HTTP: every participant's outputs, newest
first, with thumbnails and the workflow that made them; one output shown to every participant
through a route that serves exactly that one; nothing else of anyone's reachable, whatever a
recorded name or a planted link says."""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from redis.asyncio import Redis

from queue_manager.core.events import EventType
from queue_manager.core.ids import JobId
from queue_manager.service.queue import QueueService
from tests.support.gpu import Gpu
from tests.support.graphs import simple_prompt

UI_GRAPH = {"id": "wf-1", "nodes": [{"id": 1, "type": "EmptyImage"}], "links": [], "version": 0.4}


def png(width: int = 96, height: int = 64, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def service_of(app: FastAPI) -> QueueService:
    service: QueueService = app.state.service
    return service


async def run_job(
    client: httpx.AsyncClient,
    gpu: Gpu,
    user: str,
    files: list[tuple[str, bytes]],
    extra_data: dict[str, Any] | None = None,
) -> str:
    """Submit as `user`, and have the GPU store `files` (name, bytes) and complete it."""
    body: dict[str, Any] = {"prompt": simple_prompt()}
    if extra_data is not None:
        body["extra_data"] = extra_data
    r = await client.post(f"/{user}/api/prompt", json=body)
    assert r.status_code == 200, r.text
    job = await gpu.claim()
    for name, data in files:
        sub, _, filename = name.rpartition("/")
        r = await gpu.client.put(
            f"/worker/v1/jobs/{job['id']}/outputs",
            params={"attempt": job["attempt"], "filename": filename, "subfolder": sub,
                    "type": "output", "node_id": "2", "media": "images"},
            content=data,
        )  # fmt: skip
        assert r.status_code == 201, r.text
    await gpu.complete(job)
    job_id: str = job["id"]
    return job_id


async def test_the_gallery_lists_everyones_outputs_newest_first_with_their_workflow(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, teacher: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    first = await run_job(alice, online_gpu, "user001", [("cw/a.png", png()), ("cw/b.png", png())])
    second = await run_job(bob, online_gpu, "user002", [("c.png", png())])
    third = await run_job(alice, online_gpu, "user001", [("clip.mp4", b"\0\0\0 ftypisom")])

    r = await teacher.get("/admin/api/gallery")
    assert r.status_code == 200, r.text
    page = r.json()
    assert [(i["job"], i["user"]) for i in page["items"]] == [
        (third, "user001"),
        (second, "user002"),
        (first, "user001"),
    ]
    assert page["next"] is None
    oldest = page["items"][2]
    assert [(o["index"], o["subfolder"], o["filename"], o["media"]) for o in oldest["outputs"]] == [
        (0, "cw", "a.png", "image"),
        (1, "cw", "b.png", "image"),
    ]
    assert oldest["workflow"] == {"nodes": 2, "node_types": ["EmptyImage", "SaveImage"], "text": ""}
    assert page["items"][0]["outputs"][0]["media"] == "video"

    r = await teacher.get("/admin/api/gallery", params={"limit": 2})
    assert [i["job"] for i in r.json()["items"]] == [third, second]
    assert r.json()["next"] == second
    r = await teacher.get("/admin/api/gallery", params={"limit": 2, "after": second})
    assert [i["job"] for i in r.json()["items"]] == [first]
    assert r.json()["next"] is None

    r = await teacher.get("/admin/api/gallery", params={"user": "user002"})
    assert [i["job"] for i in r.json()["items"]] == [second]


async def test_a_job_without_outputs_or_not_completed_is_not_in_the_gallery(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    await run_job(alice, online_gpu, "user001", [])
    r = await alice.post("/user001/api/prompt", json={"prompt": simple_prompt()})
    assert r.status_code == 200
    assert (await teacher.get("/admin/api/gallery")).json() == {"items": [], "next": None}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"after": "not-a-job-in-the-gallery"}, 400),
        ({"after": "../../x"}, 422),
        ({"limit": 0}, 422),
        ({"limit": 100_000}, 422),
        ({"user": "a b"}, 422),
    ],
)
async def test_bad_gallery_queries_get_a_clear_error(
    teacher: httpx.AsyncClient, params: dict[str, Any], status: int
) -> None:
    r = await teacher.get("/admin/api/gallery", params=params)
    assert r.status_code == status, r.text
    if status == 400:
        assert "not in the gallery" in r.json()["error"]["message"]


async def test_thumbnails_files_and_workflows_are_served_to_the_instructor(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    image = png(1000, 500)
    job = await run_job(
        alice,
        online_gpu,
        "user001",
        [("big.png", image), ("notes.txt", b"hello")],
        extra_data={"extra_pnginfo": {"workflow": UI_GRAPH}},
    )
    r = await teacher.get(f"/admin/api/gallery/{job}/outputs/0/thumbnail")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(r.content)) as thumb:
        assert thumb.size == (320, 160)
    again = await teacher.get(
        f"/admin/api/gallery/{job}/outputs/0/thumbnail",
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert again.status_code == 304
    assert (await teacher.get(f"/admin/api/gallery/{job}/outputs/1/thumbnail")).status_code == 415
    r = await teacher.get(f"/admin/api/gallery/{job}/outputs/0")
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, image, "image/png")
    assert (await teacher.get(f"/admin/api/gallery/{job}/outputs/2")).status_code == 404
    assert (await teacher.get("/admin/api/gallery/nope/outputs/0")).status_code == 404

    r = await teacher.get(f"/admin/api/gallery/{job}/workflow")
    assert r.json() == UI_GRAPH
    assert r.headers["content-disposition"] == f'attachment; filename="user001-{job[:8]}.json"'
    plain = await run_job(alice, online_gpu, "user001", [("p.png", png())])
    assert (await teacher.get(f"/admin/api/gallery/{plain}/workflow")).json() == simple_prompt()


async def test_participants_cannot_use_the_gallery_and_nobody_is_asked_to_log_in(
    alice: httpx.AsyncClient, nobody: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    job = await run_job(alice, online_gpu, "user001", [("a.png", png())])
    calls = [
        ("GET", "/admin/api/gallery", None),
        ("GET", f"/admin/api/gallery/{job}/outputs/0", None),
        ("GET", f"/admin/api/gallery/{job}/outputs/0/thumbnail", None),
        ("GET", f"/admin/api/gallery/{job}/workflow", None),
        ("GET", "/admin/api/showcase", None),
        ("PUT", "/admin/api/showcase", {"job": job, "index": 0}),
        ("DELETE", "/admin/api/showcase", None),
    ]
    for method, url, body in calls:
        assert (await alice.request(method, url, json=body)).status_code == 403, url
        assert (await nobody.request(method, url, json=body)).status_code == 401, url


async def test_the_shown_output_reaches_every_participant_and_only_that_file(
    app: FastAPI,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
    online_gpu: Gpu,
) -> None:
    shown_png, other_png = png(color="blue"), png(color="green")
    job = await run_job(alice, online_gpu, "user001", [("s.png", shown_png), ("o.png", other_png)])
    assert (await bob.get("/user002/api/workshop/showcase")).json() == {"id": None}
    assert (await bob.get("/user002/api/workshop/showcase/image")).status_code == 404

    r = await teacher.put(
        "/admin/api/showcase", json={"job": job, "index": 0, "author": True, "caption": "Look!"}
    )
    assert r.status_code == 200, r.text
    shown = r.json()["shown"]
    assert (shown["job"], shown["index"], shown["user"]) == (job, 0, "user001")
    for client, name in ((alice, "user001"), (bob, "user002")):
        seen = (await client.get(f"/{name}/api/workshop/showcase")).json()
        assert seen == {k: shown[k] for k in ("id", "media", "caption", "author", "at")}
        assert seen["author"] == "user001"
        r = await client.get(f"/{name}/api/workshop/showcase/image", params={"v": seen["id"]})
        assert (r.status_code, r.content) == (200, shown_png)
        assert r.headers["content-disposition"] == 'filename="showcase.png"'
        assert r.headers["x-content-type-options"] == "nosniff"
    # Only the shown file: nothing in the request chooses another, and /view stays bob's own.
    r = await bob.get("/user002/api/workshop/showcase/image", params={"filename": "o.png"})
    assert r.content == shown_png
    assert (await bob.get("/user002/api/view", params={"filename": "o.png"})).status_code == 404
    assert (await bob.get("/user002/api/view", params={"filename": "s.png"})).status_code == 404
    # Another user's showcase route, and an earlier showing, are not his.
    assert (await bob.get("/user001/api/workshop/showcase/image")).status_code == 404
    stale = await bob.get("/user002/api/workshop/showcase/image", params={"v": "earlier"})
    assert stale.status_code == 404

    r = await teacher.put("/admin/api/showcase", json={"job": job, "index": 1})
    anonymous = r.json()["shown"]
    assert anonymous["author"] is None
    assert (await bob.get("/user002/api/workshop/showcase")).json()["author"] is None
    old = await bob.get("/user002/api/workshop/showcase/image", params={"v": shown["id"]})
    assert old.status_code == 404
    assert (await bob.get("/user002/api/workshop/showcase/image")).content == other_png

    assert (await teacher.delete("/admin/api/showcase")).status_code == 200
    assert (await bob.get("/user002/api/workshop/showcase")).json() == {"id": None}
    assert (await bob.get("/user002/api/workshop/showcase/image")).status_code == 404
    assert (await teacher.get("/admin/api/showcase")).json() == {"shown": None}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"job": "nope", "index": 0}, 404, "not found"),
        ({"index": 0}, 422, ""),
        ({"job": "{job}", "index": 5}, 404, "output 5"),
        ({"job": "{job}", "index": -1}, 422, ""),
        ({"job": "{job}", "index": 1}, 400, "cannot be shown"),  # a text file
        ({"job": "{job}", "index": 0, "caption": "x" * 201}, 422, ""),
    ],
)
async def test_showing_something_that_cannot_be_shown_is_refused_and_changes_nothing(
    alice: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
    online_gpu: Gpu,
    body: dict[str, Any],
    status: int,
    says: str,
) -> None:
    job = await run_job(alice, online_gpu, "user001", [("a.png", png()), ("n.txt", b"text")])
    body = {
        k: v.format(job=job) if isinstance(v, str) and k == "job" else v for k, v in body.items()
    }
    r = await teacher.put("/admin/api/showcase", json=body)
    assert r.status_code == status, r.text
    if says:
        assert says in r.json()["error"]["message"]
    assert (await teacher.get("/admin/api/showcase")).json() == {"shown": None}
    assert (await alice.get("/user001/api/workshop/showcase")).json() == {"id": None}


@pytest.mark.parametrize(
    "recorded",
    [
        {"filename": "secret.png", "subfolder": "../../user002"},
        {"filename": "../user002/secret.png", "subfolder": ""},
        {"filename": "secret.png", "subfolder": "/abs/outputs/user002"},
        {"filename": ".hidden.png", "subfolder": ""},
        {"filename": "secret.png", "subfolder": "a\\..\\..\\user002"},
    ],
)
async def test_a_recorded_name_with_path_tricks_never_reaches_another_file(
    app: FastAPI,
    redis: Redis,
    prefix: str,
    alice: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
    online_gpu: Gpu,
    tmp_path: Path,
    recorded: dict[str, str],
) -> None:
    bobs = tmp_path / "data" / "outputs" / "user002"
    bobs.mkdir(parents=True)
    (bobs / "secret.png").write_bytes(png(color="white"))
    (tmp_path / "data" / "outputs" / "user001").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "outputs" / "user001" / ".hidden.png").write_bytes(png())
    job = await run_job(alice, online_gpu, "user001", [("a.png", png())])
    recorded["subfolder"] = recorded["subfolder"].replace("/abs", str(tmp_path / "data"))
    tampered = [{**recorded, "type": "output", "size": 1, "node_id": "2", "media": "images"}]
    await redis.hset(f"{prefix}job:{job}", "outputs", json.dumps(tampered))

    for url in (
        f"/admin/api/gallery/{job}/outputs/0",
        f"/admin/api/gallery/{job}/outputs/0/thumbnail",
    ):
        assert (await teacher.get(url)).status_code == 404, url
    r = await teacher.put("/admin/api/showcase", json={"job": job, "index": 0})
    assert r.status_code == 404
    assert (await alice.get("/user001/api/workshop/showcase/image")).status_code == 404


async def test_a_link_planted_in_a_users_folder_is_never_followed(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient, online_gpu: Gpu, tmp_path: Path
) -> None:
    job = await run_job(alice, online_gpu, "user001", [("a.png", png())])
    bobs = tmp_path / "data" / "outputs" / "user002"
    bobs.mkdir(parents=True)
    (bobs / "secret.png").write_bytes(png(color="white"))
    planted = tmp_path / "data" / "outputs" / "user001" / "a.png"
    planted.unlink()
    os.symlink(bobs / "secret.png", planted)
    assert (await teacher.get(f"/admin/api/gallery/{job}/outputs/0")).status_code == 404
    assert (
        await teacher.put("/admin/api/showcase", json={"job": job, "index": 0})
    ).status_code == 404


async def test_a_show_and_a_stop_are_announced_to_the_dashboard_socket(
    app: FastAPI, teacher: httpx.AsyncClient, alice: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    job = await run_job(alice, online_gpu, "user001", [("a.png", png())])
    service = service_of(app)
    with service.subscribe(None) as sub:
        await teacher.put("/admin/api/showcase", json={"job": job, "index": 0, "caption": "hi"})
        await teacher.delete("/admin/api/showcase")
        got = []
        while len(got) < 2:  # the job's own events may still be on their way
            event = await asyncio.wait_for(sub.get(), 5)
            if event.type is EventType.OUTPUT_SHOWN:
                got.append(event)
    assert [e.type.value for e in got] == ["workshop.showcase", "workshop.showcase"]
    assert got[0].data["caption"] == "hi"
    assert "job" not in got[0].data and "filename" not in json.dumps(got[0].data)
    assert got[1].data == {"id": None}
    assert JobId(job) not in json.dumps([e.data for e in got])
