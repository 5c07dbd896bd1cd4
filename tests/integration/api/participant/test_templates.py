"""The Templates browser's files under `/{user}/templates/`: ComfyUI's official templates from
the installed package, the workshop's published workflows first, what the GPUs cannot run
marked or hidden as the instructor chooses, no 404 for any thumbnail the page asks for, and
nothing outside the package for any path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, cast

import httpx
from fastapi import FastAPI

from queue_manager.core.ids import UserId
from queue_manager.service.queue import QueueService
from queue_manager.storage.templates import TemplatePackage
from tests.support.gpu import BUNDLED, Gpu
from tests.support.graphs import sampler

UI = (Path(__file__).parents[3] / "data" / "workflows" / "txt2img-ui.json").read_bytes()
PREFIX = "/user001/templates/"
MEDIA_TYPES = ("image/webp", "image/svg+xml", "image/png", "image/jpeg", "audio/mpeg")
PACKAGE = TemplatePackage()
OFFICIAL = cast(list[dict[str, Any]], PACKAGE.read_json("index.json"))
# A template the bundled nodes run once one model is there, one they lack models for, and one
# of Comfy.org's paid API.
RUNNABLE, RUNNABLE_MODEL = "3d_hunyuan3d-v2.1", "hunyuan_3d_v2.1.safetensors"
LACKING, LACKING_MODEL = "image_flux2", "flux2_dev_fp8mixed.safetensors"
PARTNER = next(t["name"] for c in OFFICIAL for t in c["templates"] if t.get("openSource") is False)


def names(index: list[dict[str, Any]]) -> list[str]:
    return [t["name"] for c in index for t in c["templates"]]


def entry(index: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((t for c in index for t in c["templates"] if t["name"] == name), None)


def thumbnails(index: list[dict[str, Any]]) -> list[str]:
    """The URLs the page builds (`getTemplateThumbnailUrl`), both pictures where it shows two."""
    urls = []
    for t in (t for c in index for t in c["templates"]):
        count = 2 if t.get("thumbnailVariant") in ("compareSlider", "hoverDissolve") else 1
        urls += [f"{PREFIX}{t['name']}-{n}.{t['mediaSubtype']}" for n in (1, 2)[:count]]
    return urls


async def index_of(client: httpx.AsyncClient, locale: str = "") -> list[dict[str, Any]]:
    r = await client.get(f"/user001/templates/index{'.' + locale if locale else ''}.json")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    result: list[dict[str, Any]] = r.json()
    return result


async def publish(teacher: httpx.AsyncClient, name: str, body: bytes) -> None:
    r = await teacher.post("/admin/api/workflows", params={"name": name}, content=body)
    assert r.status_code == 200, r.text


async def set_mode(teacher: httpx.AsyncClient, mode: str) -> None:
    r = await teacher.put("/admin/api/templates/mode", json={"mode": mode})
    assert r.status_code == 200, r.text


def catalogue_with(model: str) -> dict[str, Any]:
    """The bundled nodes, with `model` in the checkpoint loader's list (a GPU that has it)."""
    info = copy.deepcopy(BUNDLED)
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0].append(model)
    return info


async def test_the_official_templates_are_served_as_comfyui_serves_them(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient
) -> None:
    await set_mode(teacher, "all")
    index = await index_of(alice)
    assert [c["title"] for c in index] == [c["title"] for c in OFFICIAL]
    assert names(index) == names(OFFICIAL)
    r = await alice.get(f"/user001/templates/{LACKING}.json")
    assert r.status_code == 200 and r.content == PACKAGE.path(f"{LACKING}.json").read_bytes()  # type: ignore[union-attr]


async def test_every_thumbnail_the_page_asks_for_is_there(
    app: FastAPI, alice: httpx.AsyncClient, teacher: httpx.AsyncClient
) -> None:
    await publish(teacher, "Step 1", UI)
    urls = thumbnails(await index_of(alice))
    service: QueueService = app.state.service
    # Every one of them through the service (a request each would spend its time on logins),
    # one of each kind over HTTP.
    for url in urls:
        found = await service.template_file(UserId("user001"), url.removeprefix(PREFIX))
        assert found is not None, url
    kinds = {url.rsplit(".", 1)[-1] + url.rsplit(".", 1)[0][-2:]: url for url in urls}
    for url in [urls[0], *kinds.values()]:
        r = await alice.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].split(";")[0] in MEDIA_TYPES
    logos = (await alice.get(f"{PREFIX}index_logo.json")).json()
    for path in logos.values():
        assert (await alice.get(f"{PREFIX}{path}")).status_code == 200


async def test_a_drawn_thumbnail_stands_in_where_the_media_is_not_installed(
    alice: httpx.AsyncClient,
) -> None:
    shown = entry(await index_of(alice), LACKING)
    assert shown is not None
    installed = PACKAGE.path(f"{LACKING}-1.webp")
    if installed is not None:  # the `templates-media` extra: the real pictures
        assert shown == entry(OFFICIAL, LACKING)
        r = await alice.get(f"{PREFIX}{LACKING}-2.webp")
        assert r.content == PACKAGE.path(f"{LACKING}-2.webp").read_bytes()  # type: ignore[union-attr]
        return
    assert (shown["mediaType"], shown["mediaSubtype"]) == ("image", "svg")
    assert "thumbnailVariant" not in shown
    r = await alice.get(f"{PREFIX}{LACKING}-1.svg")
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in r.content and b"FLUX.2" in r.content


async def test_published_workflows_come_first_in_the_instructors_order(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient
) -> None:
    await publish(teacher, "Step 2 - refine", UI)
    await publish(teacher, "Step 1 - txt2img", UI)
    await publish(teacher, "API only", json.dumps(sampler(4)).encode())
    r = await teacher.put("/admin/api/workflows/order", json={"names": ["Step 1 - txt2img"]})
    assert r.status_code == 200
    index = await index_of(alice)
    workshop = index[0]
    assert (workshop["title"], workshop["isEssential"], workshop["moduleName"]) == (
        "Workshop", True, "default",
    )  # fmt: skip
    # The page cannot open an API-format file as a template: it stays in the Workflows sidebar.
    assert [t["name"] for t in workshop["templates"]] == ["Step 1 - txt2img", "Step 2 - refine"]
    assert names(index)[2:] == names(OFFICIAL)
    r = await alice.get("/user001/templates/Step 1 - txt2img.json")
    assert r.status_code == 200 and r.json() == json.loads(UI)
    r = await alice.get("/user001/templates/Step 1 - txt2img-1.svg")
    assert r.status_code == 200 and b"Step 1" in r.content
    assert (await alice.get("/user001/templates/API only.json")).status_code == 404
    # The localized index (French here) has the Workshop first too.
    french = await index_of(alice, "fr")
    assert french[0]["templates"] == workshop["templates"]
    assert french[1]["title"] != index[1]["title"] or french[1]["category"] != index[1]["category"]


async def test_a_published_name_takes_an_official_ones_place(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient
) -> None:
    await publish(teacher, LACKING, UI)
    index = await index_of(alice)
    assert names(index).count(LACKING) == 1 and index[0]["templates"][0]["name"] == LACKING
    assert (await alice.get(f"/user001/templates/{LACKING}.json")).json() == json.loads(UI)


async def test_an_unknown_locale_gets_the_english_index(alice: httpx.AsyncClient) -> None:
    assert names(await index_of(alice, "xx-YY")) == names(await index_of(alice))


async def test_what_the_gpus_lack_is_marked_or_hidden_as_the_instructor_chooses(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient, gpu: Gpu
) -> None:
    # No GPU reported yet: nothing is known to be missing, so nothing is marked for it.
    assert entry(await index_of(alice), LACKING) == served(LACKING)
    await gpu.register(catalogue_with(RUNNABLE_MODEL))
    await publish(teacher, "Needs flux", _ui_needing(LACKING_MODEL))

    marked = await index_of(alice)  # the default: mark
    assert names(marked)[1:] == names(OFFICIAL)
    lacking = entry(marked, LACKING)
    assert lacking is not None
    assert lacking["description"].startswith("Needs what this workshop's GPUs don't have: models ")
    assert LACKING_MODEL in lacking["description"] and lacking["tags"][0] == "Missing models"
    assert entry(marked, RUNNABLE) == served(RUNNABLE)
    assert entry(marked, PARTNER)["description"].startswith("Runs on Comfy.org's paid API")  # type: ignore[index]
    assert LACKING_MODEL in marked[0]["templates"][0]["description"]

    await set_mode(teacher, "hide")
    hidden = names(await index_of(alice))
    assert RUNNABLE in hidden and "Needs flux" in hidden
    assert LACKING not in hidden and PARTNER not in hidden

    await set_mode(teacher, "off")
    assert names(await index_of(alice)) == ["Needs flux"]

    await set_mode(teacher, "all")
    assert entry(await index_of(alice), LACKING) == served(LACKING)

    overview = (await teacher.get("/admin/api/templates")).json()
    assert overview["mode"] == "all" and overview["official"] == len(names(OFFICIAL))
    assert LACKING_MODEL in overview["lacking"][LACKING] and RUNNABLE not in overview["lacking"]
    assert 0 < overview["runnable"] < overview["official"]


def served(name: str) -> dict[str, Any]:
    """`name`'s official entry as served unmarked: with a drawn thumbnail where its media is
    not installed."""
    shown = dict(entry(OFFICIAL, name) or {})
    if PACKAGE.path(f"{name}-1.{shown['mediaSubtype']}") is None:
        shown |= {"mediaType": "image", "mediaSubtype": "svg"}
        shown.pop("thumbnailVariant", None)
    return shown


def _ui_needing(model: str) -> bytes:
    graph = json.loads(UI)
    for node in graph["nodes"]:
        if node["type"] == "CheckpointLoaderSimple":
            node["widgets_values"] = [model]
    return json.dumps(graph).encode()


# Sent as they are (httpx keeps percent-encodings, the server decodes them once).
TRICKS = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fpyproject.toml",
    "%252e%252e%252fetc%252fpasswd",
    "..%5C..%5Cetc%5Cpasswd",
    "logo/..%2F..%2Fmanifest.json",
    "%2Fetc%2Fpasswd",
    "index.json%00",
    "manifest.json",
    "__init__.py",
    "nothing-here.json",
    "nothing-here-1.svg",
    "Step 1.json",  # not published
]
# What httpx or a browser would clean up before sending, as the route could still get it.
RAW_TRICKS = [
    "../../etc/passwd", "logo/../../pyproject.toml", "./index.json", "/etc/passwd", "..",
    "a/./b.json", "..\\..\\etc\\passwd", "index.json\x00", "x" * 400 + ".json", "",
]  # fmt: skip


async def test_paths_that_name_no_template_file_are_404(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    for path in TRICKS:
        r = await alice.get(f"{PREFIX}{path}")
        assert r.status_code == 404, (path, r.status_code, r.content[:80])
    service: QueueService = app.state.service
    for path in RAW_TRICKS:
        assert await service.template_file(UserId("user001"), path) is None, path


async def test_only_the_owner_gets_the_templates(
    bob: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    assert (await nobody.get("/user001/templates/index.json")).status_code == 401
    assert (await bob.get("/user001/templates/index.json")).status_code == 404
    assert (await bob.get(f"/user001/templates/{LACKING}.json")).status_code == 404
    assert (await bob.get("/user002/templates/index.json")).status_code == 200


async def test_only_the_instructor_sets_the_mode_and_a_bad_one_changes_nothing(
    alice: httpx.AsyncClient, teacher: httpx.AsyncClient
) -> None:
    assert (await alice.put("/admin/api/templates/mode", json={"mode": "off"})).status_code == 403
    assert (await alice.get("/admin/api/templates")).status_code == 403
    r = await teacher.put("/admin/api/templates/mode", json={"mode": "sometimes"})
    assert r.status_code == 422
    assert (await teacher.get("/admin/api/templates")).json()["mode"] == "mark"
    await set_mode(teacher, "hide")
    assert (await teacher.get("/admin/api/templates")).json()["mode"] == "hide"
