"""The instructor's workflows through the admin API: publish (UI or API format), list with
what no GPU has, rename, reorder, first, a seed per participant, remove, send; bad files and
names refused with a clear message and nothing changed; participants refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.support.gpu import Gpu
from tests.support.graphs import sampler

UI = (Path(__file__).parents[3] / "data" / "workflows" / "txt2img-ui.json").read_bytes()
API = json.dumps(sampler(4)).encode()


async def publish(
    client: httpx.AsyncClient, name: str, body: bytes, **params: Any
) -> httpx.Response:
    return await client.post("/admin/api/workflows", params={"name": name, **params}, content=body)


async def names(client: httpx.AsyncClient) -> list[str]:
    return [w["name"] for w in (await client.get("/admin/api/workflows")).json()]


async def test_both_formats_publish_in_order_and_the_first_is_the_first_published(
    teacher: httpx.AsyncClient,
) -> None:
    r = await publish(teacher, "Step 1 - txt2img.json", UI)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert (shown["name"], shown["format"], shown["first"], shown["version"]) == (
        "Step 1 - txt2img",
        "ui",
        True,
        1,
    )
    assert shown["path"] == "workflows/Workshop/Step 1 - txt2img.json"
    r = await publish(teacher, "Step 2", API)
    assert r.json()["format"] == "api" and r.json()["first"] is False
    assert await names(teacher) == ["Step 1 - txt2img", "Step 2"]
    again = await publish(teacher, "Step 1 - txt2img", UI)
    assert again.json()["version"] == 2 and again.json()["position"] == 0
    got = await teacher.get("/admin/api/workflows/Step 2")
    assert got.json() == sampler(4)


async def test_rename_reorder_first_seed_and_remove(teacher: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c"):
        await publish(teacher, name, API)
    r = await teacher.put("/admin/api/workflows/order", json={"names": ["c", "a"]})
    assert [w["name"] for w in r.json()] == ["c", "a", "b"]
    r = await teacher.patch("/admin/api/workflows/a", json={"name": "Alpha", "first": True})
    assert r.status_code == 200 and r.json()["first"] is True
    assert await names(teacher) == ["c", "Alpha", "b"]
    r = await teacher.patch("/admin/api/workflows/b", json={"randomize_seed": True})
    assert r.json()["randomize_seed"] is True
    assert (
        await teacher.patch("/admin/api/workflows/b", json={"name": "alpha"})
    ).status_code == 400
    assert (await teacher.delete("/admin/api/workflows/Alpha")).status_code == 200
    listed = (await teacher.get("/admin/api/workflows")).json()
    assert [w["name"] for w in listed] == ["c", "b"] and not any(w["first"] for w in listed)
    assert (await teacher.delete("/admin/api/workflows/Alpha")).status_code == 404
    assert (await teacher.post("/admin/api/workflows/nope/send")).status_code == 404


async def test_what_no_gpu_has_is_shown_when_publishing(
    teacher: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    graph = sampler(4)
    graph["10"] = {"class_type": "FancyUpscaler", "inputs": {"image": ["8", 0]}}
    r = await publish(teacher, "needs things", json.dumps(graph).encode())
    shown = r.json()
    assert shown["missing_nodes"] == ["FancyUpscaler"]
    assert shown["missing_models"] == ["v1-5-pruned-emaonly-fp16.safetensors"]
    assert shown["checked_against"] == "gpus"


async def test_bad_files_and_names_are_refused_and_change_nothing(
    teacher: httpx.AsyncClient,
) -> None:
    await publish(teacher, "keep", API)
    cases = [
        ("x", b"not json {", "not a ComfyUI workflow"),
        ("x", b"[1, 2]", "UI format"),
        ("x", json.dumps({"a": 1}).encode(), "API format"),
        ("x", b"[" * 5000 + b"]" * 5000, "deeper"),
        ("../../etc/passwd", API, "not a workflow name"),
        ("a/b", API, "not a workflow name"),
        (".hidden", API, "not a workflow name"),
        ("..", API, "not a workflow name"),
        ("con\x00trol", API, "not a workflow name"),
        ("", API, "needs a name"),
    ]
    for name, body, message in cases:
        r = await publish(teacher, name, body)
        assert r.status_code == 400, (name, r.text)
        assert message in r.json()["error"]["message"], (name, r.json())
    huge = json.dumps({"nodes": [], "links": [], "pad": "x" * (9 * 2**20)}).encode()
    assert (await publish(teacher, "huge", huge)).status_code == 413
    assert await names(teacher) == ["keep"]


async def test_participants_cannot_reach_the_workflow_controls(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    await publish(teacher, "keep", API)
    assert (await publish(alice, "mine", API)).status_code == 403
    assert (await alice.get("/admin/api/workflows")).status_code == 403
    assert (await alice.delete("/admin/api/workflows/keep")).status_code == 403
    assert (await alice.post("/admin/api/workflows/keep/send")).status_code == 403
    assert await names(teacher) == ["keep"]
