"""ComfyUI's user-data API under `/{user}/`: settings and workflow files, per participant.

The expected shapes are written out here, as the captures of a real ComfyUI 0.25.0 show them
(`shared/comfyui-reference/captures/comfyui-0.25.0/*userdata*`, `*setting*`, `get_users`; no
test reads those files, so tests/data does not keep them).
"""

# The client fixtures are imported by name, and each test names them again as parameters.

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import UserId
from queue_manager.service.setting_defaults import open_setting_defaults
from queue_manager.settings import Settings
from queue_manager.store.accounts import AccountStore
from tests.support.participants import ACCOUNTS, PASSWORD, client_for
from tests.support.settings import make_settings

A = "/user001/api"
WORKFLOW = (
    b'{"last_node_id": 0, "last_link_id": 0, "nodes": [], "links": [], "groups": [], '
    b'"config": {}, "extra": {}, "version": 0.4}'
)
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
SECRET = b"the other side of the wall"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(autouse=True)
async def _no_defaults(redis: Redis, settings: Settings) -> None:
    """These tests are about what a participant saves; the workshop's defaults beneath it are
    test_setting_defaults.py's."""
    await open_setting_defaults(redis, settings).replace({}, UserId("teacher"))


@pytest.fixture
def alice_dir(data: Path) -> Path:
    return data / "userdata" / "user001"


@pytest.fixture
async def me(alice: httpx.AsyncClient) -> httpx.AsyncClient:
    """Alice with a session cookie as well: it is checked first, which spares the argon2 check
    of HTTP Basic on every request of the tests that make many."""
    r = await alice.post("/login", data={"username": "user001", "password": PASSWORD})
    assert r.status_code == 303
    return alice


def every_file(folder: Path) -> list[str]:
    """All names under `folder`, hidden ones (temp files) included."""
    found = []
    for root, dirs, files in os.walk(folder):
        found += [os.path.relpath(os.path.join(root, n), folder) for n in dirs + files]
    return sorted(found)


def plant(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


async def save(client: httpx.AsyncClient, name: str, body: bytes = WORKFLOW, **query: str) -> str:
    r = await client.post(f"{A}/userdata/{name}", content=body, params=query)
    assert r.status_code == 200, r.text
    result: str = r.json()
    return result


# Users and settings -------------------------------------------------------------------------


async def test_users_and_a_fresh_users_settings_match_comfyui(alice: httpx.AsyncClient) -> None:
    users = await alice.get(f"{A}/users")
    assert (users.status_code, users.json()) == (200, {"storage": "server", "migrated": True})
    assert users.headers["content-type"] == JSON_TYPE
    settings = await alice.get(f"{A}/settings")
    assert (settings.status_code, settings.json()) == (200, {})
    assert settings.headers["content-type"] == JSON_TYPE
    one = await alice.get(f"{A}/settings/Comfy.Locale")
    assert (one.status_code, one.content, one.headers["content-type"]) == (200, b"null", JSON_TYPE)


async def test_settings_posted_as_text_plain_are_stored_and_merged(
    alice: httpx.AsyncClient, alice_dir: Path
) -> None:
    single = await alice.post(
        f"{A}/settings/Comfy.Locale",
        content=b'"en"',
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert (single.status_code, single.content) == (200, b"")
    assert "content-type" not in single.headers
    bulk = await alice.post(f"{A}/settings", json={"Comfy.Capture.Example": 1})
    assert (bulk.status_code, bulk.content) == (200, b"")
    assert (await alice.get(f"{A}/settings")).json() == {
        "Comfy.Locale": "en",
        "Comfy.Capture.Example": 1,
    }
    assert (await alice.get(f"{A}/settings/Comfy.Locale")).json() == "en"
    on_disk = json.loads((alice_dir / "comfy.settings.json").read_text())
    assert on_disk == {"Comfy.Locale": "en", "Comfy.Capture.Example": 1}
    # a value can be any JSON, and is replaced by the next one
    await alice.post(f"{A}/settings/Comfy.TutorialCompleted", content=b"true")
    await alice.post(f"{A}/settings/Comfy.Locale", content=b'{"nested": [1, 2.5, null]}')
    assert (await alice.get(f"{A}/settings/Comfy.Locale")).json() == {"nested": [1, 2.5, None]}
    assert (await alice.get(f"{A}/settings/Comfy.TutorialCompleted")).json() is True


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/settings", b"[1, 2]"),
        ("/settings", b"not json"),
        ("/settings/Comfy.Locale", b"{broken"),
        ("/settings/Comfy.Locale", b"NaN"),
        ("/settings/Comfy.Locale", b"\xff\xfe\x00"),
    ],
)
async def test_a_settings_body_that_is_not_usable_json_is_refused(
    alice: httpx.AsyncClient, alice_dir: Path, path: str, body: bytes
) -> None:
    r = await alice.post(A + path, content=body)
    assert r.status_code == 400
    assert r.headers["content-type"] == TEXT_TYPE
    assert not (alice_dir / "comfy.settings.json").exists()


async def test_concurrent_setting_updates_are_all_kept(me: httpx.AsyncClient) -> None:
    writes = [me.post(f"{A}/settings/key{i}", content=str(i).encode()) for i in range(25)]
    writes += [me.post(f"{A}/settings", json={f"bulk{i}": i}) for i in range(25)]
    assert {r.status_code for r in await asyncio.gather(*writes)} == {200}
    settings = (await me.get(f"{A}/settings")).json()
    assert settings == {f"key{i}": i for i in range(25)} | {f"bulk{i}": i for i in range(25)}


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2, 3]", b'"a string"', b"\x00\xff"])
async def test_a_corrupt_settings_file_reads_as_empty_and_is_replaced_on_save(
    alice: httpx.AsyncClient, alice_dir: Path, content: bytes
) -> None:
    plant(alice_dir / "comfy.settings.json", content)
    r = await alice.get(f"{A}/settings")
    assert (r.status_code, r.json()) == (200, {})
    assert (await alice.get(f"{A}/settings/Comfy.Locale")).json() is None
    assert (await alice.post(f"{A}/settings/Comfy.Locale", content=b'"fr"')).status_code == 200
    assert (await alice.get(f"{A}/settings")).json() == {"Comfy.Locale": "fr"}


# Listing and the first visit ----------------------------------------------------------------


async def test_a_first_visit_lists_nothing_the_way_comfyui_does(alice: httpx.AsyncClient) -> None:
    # What the page asks on every load reads as empty (ComfyUI: 404s the browser logs).
    query = {"dir": "workflows", "recurse": "true", "split": "false", "full_info": "true"}
    r = await alice.get(f"{A}/userdata", params=query)
    assert (r.status_code, r.json(), r.headers["content-type"]) == (200, [], JSON_TYPE)
    assert (await alice.get(f"{A}/userdata", params={"dir": "subgraphs/"})).json() == []
    other = await alice.get(f"{A}/userdata", params={"dir": "elsewhere"})
    assert (other.status_code, other.text, other.headers["content-type"]) == (
        404,
        "Directory not found",
        TEXT_TYPE,
    )
    no_dir = await alice.get(f"{A}/userdata")
    assert (no_dir.status_code, no_dir.text) == (400, "Directory not provided")
    root = await alice.get(f"{A}/v2/userdata")
    assert (root.status_code, root.json(), root.headers["content-type"]) == (200, [], JSON_TYPE)
    sub = await alice.get(f"{A}/v2/userdata", params={"path": "workflows"})
    assert (sub.status_code, sub.text) == (404, "Requested path not found")
    templates = await alice.get(f"{A}/userdata/comfy.templates.json")
    assert (templates.status_code, templates.json()) == (200, [])
    css = await alice.get(f"{A}/userdata/user.css")
    assert (css.status_code, css.content, css.headers["content-type"]) == (
        200,
        b"",
        "text/css; charset=utf-8",
    )
    assert (await alice.get(f"{A}/userdata/workflows%2Fnone.json")).status_code == 404


async def test_a_participants_own_user_css_and_templates_are_served_once_saved(
    alice: httpx.AsyncClient, alice_dir: Path
) -> None:
    assert await save(alice, "user.css", b"body{color:red}") == "user.css"
    assert (await alice.get(f"{A}/userdata/user.css")).content == b"body{color:red}"
    assert await save(alice, "comfy.templates.json", b'[{"name":"t"}]') == "comfy.templates.json"
    assert (await alice.get(f"{A}/userdata/comfy.templates.json")).json() == [{"name": "t"}]
    assert (await alice.delete(f"{A}/userdata/user.css")).status_code == 204
    assert (await alice.get(f"{A}/userdata/user.css")).content == b""
    assert every_file(alice_dir) == ["comfy.templates.json"]


async def test_save_list_and_read_back_in_every_shape(
    alice: httpx.AsyncClient, alice_dir: Path
) -> None:
    saved = await alice.post(
        f"{A}/userdata/workflows%2Fcapture.json",
        content=WORKFLOW,
        headers={"content-type": "application/json"},
    )
    assert (saved.status_code, saved.json()) == (200, "workflows/capture.json")
    assert saved.headers["content-type"] == JSON_TYPE
    info = await alice.post(
        f"{A}/userdata/workflows%2Fcapture2.json",
        content=WORKFLOW,
        params={"overwrite": "true", "full_info": "true"},
    )
    assert info.status_code == 200
    body = info.json()
    assert set(body) == {"path", "size", "modified", "created"}
    assert (body["path"], body["size"]) == ("workflows/capture2.json", len(WORKFLOW))
    mtime = (alice_dir / "workflows" / "capture2.json").stat().st_mtime
    assert isinstance(body["modified"], int)
    assert abs(body["modified"] - mtime * 1000) < 2
    assert isinstance(body["created"], int)

    got = await alice.get(f"{A}/userdata/workflows%2Fcapture.json")
    assert (got.status_code, got.content) == (200, WORKFLOW)
    assert got.headers["content-type"] == "application/json"
    assert got.headers["content-length"] == str(len(WORKFLOW))
    assert got.headers["etag"].startswith('"') and got.headers["last-modified"].endswith("GMT")

    def listing(**query: str) -> dict[str, str]:
        return {"dir": "workflows", **query}

    plain = await alice.get(f"{A}/userdata", params=listing())
    assert (plain.status_code, plain.headers["content-type"]) == (200, JSON_TYPE)
    assert sorted(plain.json()) == ["capture.json", "capture2.json"]
    split = await alice.get(f"{A}/userdata", params=listing(recurse="true", split="true"))
    assert sorted(split.json()) == [
        ["capture.json", "capture.json"],
        ["capture2.json", "capture2.json"],
    ]
    full = await alice.get(
        f"{A}/userdata", params=listing(recurse="true", split="false", full_info="true")
    )
    entries = sorted(full.json(), key=lambda e: e["path"])
    assert [(e["path"], e["size"]) for e in entries] == [
        ("capture.json", len(WORKFLOW)),
        ("capture2.json", len(WORKFLOW)),
    ]
    assert all(set(e) == {"path", "size", "modified", "created"} for e in entries)

    v2 = await alice.get(f"{A}/v2/userdata", params={"path": "workflows"})
    assert v2.headers["content-type"] == JSON_TYPE
    items = v2.json()
    assert [(i["name"], i["path"], i["type"], i["size"]) for i in items] == [
        ("capture.json", "workflows/capture.json", "file", len(WORKFLOW)),
        ("capture2.json", "workflows/capture2.json", "file", len(WORKFLOW)),
    ]
    assert isinstance(items[0]["modified"], float)
    root = (await alice.get(f"{A}/v2/userdata")).json()
    assert root[0] == {"name": "workflows", "path": "workflows", "type": "directory"}


async def test_recursion_and_subfolders(alice: httpx.AsyncClient) -> None:
    await save(alice, "workflows%2Ftop.json")
    await save(alice, "workflows%2Fclass%2Fday1%2Fdeep.json")
    flat = await alice.get(f"{A}/userdata", params={"dir": "workflows"})
    assert flat.json() == ["top.json"]
    deep = await alice.get(f"{A}/userdata", params={"dir": "workflows", "recurse": "true"})
    assert sorted(deep.json()) == ["class/day1/deep.json", "top.json"]
    split = await alice.get(
        f"{A}/userdata", params={"dir": "workflows", "recurse": "true", "split": "true"}
    )
    assert ["class/day1/deep.json", "class", "day1", "deep.json"] in split.json()
    tree = (await alice.get(f"{A}/v2/userdata", params={"path": "workflows"})).json()
    assert [(i["type"], i["path"]) for i in tree] == [
        ("directory", "workflows/class"),
        ("directory", "workflows/class/day1"),
        ("file", "workflows/class/day1/deep.json"),
        ("file", "workflows/top.json"),
    ]


# Overwrite, move, delete --------------------------------------------------------------------


async def test_overwrite_false_answers_409_and_keeps_the_file(
    alice: httpx.AsyncClient, alice_dir: Path
) -> None:
    await save(alice, "workflows%2Fa.json", b"first")
    r = await alice.post(
        f"{A}/userdata/workflows%2Fa.json", content=b"second", params={"overwrite": "false"}
    )
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        409,
        "File already exists",
        TEXT_TYPE,
    )
    assert (alice_dir / "workflows" / "a.json").read_bytes() == b"first"
    await save(alice, "workflows%2Fa.json", b"third")  # overwrite defaults to true
    assert (alice_dir / "workflows" / "a.json").read_bytes() == b"third"
    assert every_file(alice_dir) == ["workflows", "workflows/a.json"]  # no temp files left


async def test_move_and_delete_round_trip(alice: httpx.AsyncClient, alice_dir: Path) -> None:
    await save(alice, "workflows%2Fcapture2.json", b"two")
    moved = await alice.post(
        f"{A}/userdata/workflows%2Fcapture2.json/move/workflows%2Fcapture3.json"
    )
    assert (moved.status_code, moved.json()) == (200, "workflows/capture3.json")
    assert moved.headers["content-type"] == JSON_TYPE
    assert (await alice.get(f"{A}/userdata/workflows%2Fcapture2.json")).status_code == 404
    assert (await alice.get(f"{A}/userdata/workflows%2Fcapture3.json")).content == b"two"

    await save(alice, "workflows%2Fother.json", b"other")
    refused = await alice.post(
        f"{A}/userdata/workflows%2Fother.json/move/workflows%2Fcapture3.json",
        params={"overwrite": "false"},
    )
    assert (refused.status_code, refused.text) == (409, "File already exists")
    assert (alice_dir / "workflows" / "other.json").read_bytes() == b"other"
    into_folder = await alice.post(
        f"{A}/userdata/workflows%2Fother.json/move/archive%2F2026%2Fother.json",
        params={"full_info": "true"},
    )
    assert into_folder.json()["path"] == "archive/2026/other.json"
    assert (alice_dir / "archive" / "2026" / "other.json").read_bytes() == b"other"
    gone = await alice.post(f"{A}/userdata/workflows%2Fnope.json/move/workflows%2Fx.json")
    assert gone.status_code == 404

    deleted = await alice.delete(f"{A}/userdata/workflows%2Fcapture3.json")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await alice.get(f"{A}/userdata/workflows%2Fcapture3.json")).status_code == 404
    assert (await alice.delete(f"{A}/userdata/workflows%2Fcapture3.json")).status_code == 404
    assert (await alice.get(f"{A}/userdata", params={"dir": "workflows"})).json() == []


async def test_encoded_and_plain_slashes_name_the_same_file_and_move_is_unambiguous(
    alice: httpx.AsyncClient, alice_dir: Path
) -> None:
    assert await save(alice, "workflows/plain.json", b"plain") == "workflows/plain.json"
    assert (await alice.get(f"{A}/userdata/workflows%2Fplain.json")).content == b"plain"
    assert (await alice.get(f"{A}/userdata/workflows/plain.json")).content == b"plain"
    # encoded: a file whose folder is called "move", not a move
    assert await save(alice, "workflows%2Fmove%2Fx.json", b"x") == "workflows/move/x.json"
    assert (alice_dir / "workflows" / "move" / "x.json").read_bytes() == b"x"
    # plain slashes: ComfyUI's `{file}/move/{dest}`
    moved = await alice.post(f"{A}/userdata/workflows/plain.json/move/workflows/renamed.json")
    assert moved.json() == "workflows/renamed.json"
    assert (alice_dir / "workflows" / "renamed.json").read_bytes() == b"plain"
    ambiguous = await alice.post(f"{A}/userdata/a/move/b/move/c")
    assert ambiguous.status_code == 400
    assert not (alice_dir / "a").exists()


async def test_folders_are_not_files(alice: httpx.AsyncClient, alice_dir: Path) -> None:
    await save(alice, "workflows%2Fa.json")
    assert (await alice.get(f"{A}/userdata/workflows")).status_code == 404
    assert (await alice.delete(f"{A}/userdata/workflows")).status_code == 400
    over = await alice.post(f"{A}/userdata/workflows", content=b"x")
    assert over.status_code == 400
    under_file = await alice.post(f"{A}/userdata/workflows%2Fa.json%2Fb.json", content=b"x")
    assert under_file.status_code == 400
    assert (await alice.post(f"{A}/userdata/", content=b"x")).status_code == 400
    assert every_file(alice_dir) == ["workflows", "workflows/a.json"]


async def test_both_url_forms_reach_the_same_data(alice: httpx.AsyncClient) -> None:
    await alice.post("/user001/settings/Comfy.Locale", content=b'"de"')
    assert (await alice.get("/user001/api/settings")).json() == {"Comfy.Locale": "de"}
    assert (await alice.get("/user001/users")).json()["storage"] == "server"
    r = await alice.post("/user001/userdata/workflows%2Fshort.json", content=b"s")
    assert r.json() == "workflows/short.json"
    assert (await alice.get("/user001/api/userdata/workflows%2Fshort.json")).content == b"s"
    listed = await alice.get("/user001/userdata", params={"dir": "workflows"})
    assert listed.json() == ["short.json"]
    assert (await alice.get("/user001/v2/userdata")).json()[0]["name"] == "workflows"
    moved = await alice.post("/user001/userdata/workflows%2Fshort.json/move/workflows%2Fb.json")
    assert moved.json() == "workflows/b.json"
    assert (await alice.delete("/user001/userdata/workflows%2Fb.json")).status_code == 204


# Who may see what ---------------------------------------------------------------------------


async def test_nobody_gets_401_and_writes_nothing(nobody: httpx.AsyncClient, data: Path) -> None:
    for method, path in [
        ("GET", "/users"),
        ("GET", "/settings"),
        ("POST", "/settings/Comfy.Locale"),
        ("GET", "/userdata?dir=workflows"),
        ("POST", "/userdata/workflows%2Fa.json"),
        ("GET", "/v2/userdata"),
    ]:
        r = await nobody.request(method, A + path, content=b'"x"')
        assert r.status_code == 401, (method, path)
    assert not (data / "userdata").exists()


async def test_participants_never_see_each_others_data(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, alice_dir: Path
) -> None:
    await save(alice, "workflows%2Fsecret.json", b"alice only")
    await alice.post(f"{A}/settings/Comfy.Locale", content=b'"en"')

    assert (await bob.get("/user002/api/settings")).json() == {}
    bob_list = await bob.get("/user002/api/userdata", params={"dir": "workflows"})
    assert bob_list.json() == []
    assert (await bob.get("/user002/api/v2/userdata")).json() == []
    assert (await bob.get("/user002/api/userdata/workflows%2Fsecret.json")).status_code == 404

    # bob using alice's prefix: 404, as for a path that does not exist
    for method, path in [
        ("GET", f"{A}/settings"),
        ("GET", f"{A}/settings/Comfy.Locale"),
        ("POST", f"{A}/settings/Comfy.Locale"),
        ("GET", f"{A}/userdata?dir=workflows"),
        ("GET", f"{A}/userdata/workflows%2Fsecret.json"),
        ("POST", f"{A}/userdata/workflows%2Fsecret.json"),
        ("POST", f"{A}/userdata/workflows%2Fsecret.json/move/workflows%2Fx.json"),
        ("DELETE", f"{A}/userdata/workflows%2Fsecret.json"),
        ("GET", f"{A}/v2/userdata"),
        ("GET", "/user001/users"),
    ]:
        r = await bob.request(method, path, content=b'"bob"')
        assert r.status_code == 404, (method, path)
        assert b"alice only" not in r.content
    assert (alice_dir / "workflows" / "secret.json").read_bytes() == b"alice only"
    assert (await alice.get(f"{A}/settings")).json() == {"Comfy.Locale": "en"}

    await bob.post("/user002/api/settings/Comfy.Locale", content=b'"fr"')
    assert (await alice.get(f"{A}/settings/Comfy.Locale")).json() == "en"
    assert (await bob.get("/user002/api/settings/Comfy.Locale")).json() == "fr"


# Nothing escapes the folder -----------------------------------------------------------------

TRAVERSALS = [
    "..%2F..%2Fsecret.txt",  # decoded by routing: ../../secret.txt
    "%2e%2e%2f%2e%2e%2fsecret.txt",
    "%2E%2E%2Fsecret.txt",
    "workflows%2F..%2F..%2Fsecret.txt",
    "workflows%2F..%2F..%2F..%2Fsecret.txt",
    "..%2Fuser002%2Fcomfy.settings.json",
    "%2e%2e",
    "%252e%252e%252fsecret.txt",  # double-encoded: still %2e%2e%2f after one decoding
    "..%252fsecret.txt",
    "%2Fetc%2Fpasswd",  # absolute
    "%2F%2Fetc%2Fpasswd",
    "..%5C..%5Csecret.txt",  # backslashes
    "workflows%5Ca.json",
    "a%00b.json",  # NUL and controls
    "a%0Ab.json",
    "a%1Bb.json",
    ".hidden.json",  # hidden names (and our temp files)
    "workflows%2F.index.json",
    "workflows%2F.abc.part",
]


@pytest.fixture
def walls(data: Path, tmp_path: Path) -> list[Path]:
    """Files just outside alice's folder that must stay unread and untouched."""
    planted = [tmp_path / "secret.txt", data / "secret.txt", data / "userdata" / "secret.txt"]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(SECRET)
    bob_dir = data / "userdata" / "user002"
    bob_dir.mkdir()
    (bob_dir / "comfy.settings.json").write_text('{"Bob.Secret": "b"}')
    return [*planted, bob_dir / "comfy.settings.json"]


def untouched(walls: list[Path], tmp_path: Path) -> bool:
    expected = {p: (SECRET if p.name == "secret.txt" else b'{"Bob.Secret": "b"}') for p in walls}
    outside = {str(p) for p in tmp_path.rglob("*") if "user001" not in p.parts and p.is_file()}
    return all(p.read_bytes() == b for p, b in expected.items()) and outside == {
        str(p) for p in walls
    }


@pytest.mark.parametrize("name", TRAVERSALS)
async def test_no_name_leaves_the_users_folder(
    me: httpx.AsyncClient, walls: list[Path], tmp_path: Path, alice_dir: Path, name: str
) -> None:
    await save(me, "workflows%2Fmine.json", b"mine")
    answers = [
        await me.get(f"{A}/userdata/{name}"),
        await me.post(f"{A}/userdata/{name}", content=b"overwritten"),
        await me.delete(f"{A}/userdata/{name}"),
        await me.post(f"{A}/userdata/workflows%2Fmine.json/move/{name}"),
        await me.post(f"{A}/userdata/{name}/move/workflows%2Fstolen.json"),
    ]
    refused = (400, 403, 404) if "%0A" in name else (400, 403)  # no route takes a newline
    for r in answers:
        assert r.status_code in refused, (r.request.method, r.request.url, r.status_code)
        assert SECRET not in r.content and b"Bob.Secret" not in r.content
    assert untouched(walls, tmp_path)
    assert every_file(alice_dir) == ["workflows", "workflows/mine.json"]


@pytest.mark.parametrize(
    "query",
    [
        "dir=..",
        "dir=../user002",
        "dir=%2e%2e%2fuser002",
        "dir=/etc",
        "dir=workflows/../..",
        "dir=%252e%252e",
        "dir=.hidden",
        "dir=a%5Cb",
    ],
)
async def test_no_listing_leaves_the_users_folder(
    me: httpx.AsyncClient, walls: list[Path], tmp_path: Path, query: str
) -> None:
    await save(me, "workflows%2Fmine.json")
    v2_query = query.replace("dir=", "path=")
    for url in (f"{A}/userdata?{query}&recurse=true", f"{A}/v2/userdata?{v2_query}"):
        r = await me.get(url)
        assert r.status_code in (400, 403), url
        assert SECRET not in r.content and b"Bob.Secret" not in r.content
    assert untouched(walls, tmp_path)


async def test_planted_links_are_never_followed(
    me: httpx.AsyncClient, alice_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "settings.json").write_text('{"Outside.Secret": 1}')
    workflows = alice_dir / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "real.json").write_bytes(b"real")
    os.symlink(outside, workflows / "door")  # a folder link
    os.symlink(outside / "secret.txt", workflows / "leak.json")  # a file link
    os.symlink(outside / "settings.json", alice_dir / "comfy.settings.json")

    for url in (
        f"{A}/userdata/workflows%2Fleak.json",
        f"{A}/userdata/workflows%2Fdoor%2Fsecret.txt",
        f"{A}/userdata/workflows/door/secret.txt",
        f"{A}/userdata/comfy.settings.json",
        f"{A}/userdata?dir=workflows%2Fdoor",
        f"{A}/v2/userdata?path=workflows/door",
    ):
        r = await me.get(url)
        assert r.status_code == 403, url
        assert SECRET not in r.content
    listed = await me.get(f"{A}/userdata", params={"dir": "workflows", "recurse": "true"})
    assert listed.json() == ["real.json"]
    tree = (await me.get(f"{A}/v2/userdata")).json()
    assert [i["path"] for i in tree] == ["workflows", "workflows/real.json"]
    assert (await me.get(f"{A}/settings")).json() == {}

    into_door = await me.post(f"{A}/userdata/workflows%2Fdoor%2Fnew.json", content=b"x")
    assert into_door.status_code == 403
    move_in = await me.post(f"{A}/userdata/workflows%2Freal.json/move/workflows%2Fdoor%2Fx")
    assert move_in.status_code == 403
    move_link = await me.post(f"{A}/userdata/workflows%2Fleak.json/move/workflows%2Fmine.json")
    assert move_link.status_code == 403
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt", "settings.json"]

    # writing over a link replaces the link; the file it pointed at is untouched
    assert await save(me, "workflows%2Fleak.json", b"new") == "workflows/leak.json"
    assert not (workflows / "leak.json").is_symlink()
    assert (workflows / "leak.json").read_bytes() == b"new"
    await me.post(f"{A}/settings/Comfy.Locale", content=b'"en"')
    assert not (alice_dir / "comfy.settings.json").is_symlink()
    assert (await me.get(f"{A}/settings")).json() == {"Comfy.Locale": "en"}
    # deleting a link removes the link only
    assert (await me.delete(f"{A}/userdata/workflows%2Fdoor")).status_code == 204
    assert not (workflows / "door").exists()
    assert (outside / "secret.txt").read_bytes() == SECRET
    assert json.loads((outside / "settings.json").read_text()) == {"Outside.Secret": 1}


async def test_a_users_folder_that_is_a_link_is_refused(
    bob: httpx.AsyncClient, data: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "comfy.settings.json").write_text('{"Outside.Secret": 1}')
    (data / "userdata").mkdir(parents=True)
    os.symlink(outside, data / "userdata" / "user002")
    assert (await bob.get("/user002/api/settings")).json() == {}
    saved = await bob.post("/user002/api/userdata/workflows%2Fa.json", content=b"x")
    assert saved.status_code == 403
    listed = await bob.get("/user002/api/userdata", params={"dir": "workflows"})
    assert listed.status_code == 403
    assert (await bob.post("/user002/api/settings/A", content=b"1")).status_code == 403
    assert sorted(p.name for p in outside.iterdir()) == ["comfy.settings.json"]


# Size limit ---------------------------------------------------------------------------------

LIMIT = 1000


@pytest.fixture
async def small(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """Alice on an app that keeps user files to LIMIT bytes."""
    settings = make_settings(
        redis_server, prefix, data_dir=tmp_path / "data", max_userdata_bytes=LIMIT
    )
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application):
        accounts: AccountStore = application.state.accounts
        for name, role in ACCOUNTS.items():
            await accounts.add(name, role, PASSWORD)
        async with client_for(application, "user001") as client:
            yield client


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


async def test_a_body_over_the_limit_gets_413_and_leaves_nothing(
    small: httpx.AsyncClient, alice_dir: Path
) -> None:
    assert await save(small, "workflows%2Fexact.json", b"x" * LIMIT) == "workflows/exact.json"
    declared = await small.post(f"{A}/userdata/workflows%2Fbig.json", content=b"x" * (LIMIT + 1))
    assert declared.status_code == 413
    assert f"{LIMIT} bytes" in declared.text
    streamed = await small.post(f"{A}/userdata/workflows%2Fbig.json", content=chunks(5 * LIMIT))
    assert streamed.status_code == 413
    replace = await small.post(f"{A}/userdata/workflows%2Fexact.json", content=chunks(2 * LIMIT))
    assert replace.status_code == 413
    assert every_file(alice_dir) == ["workflows", "workflows/exact.json"]  # no temp file left
    assert (alice_dir / "workflows" / "exact.json").read_bytes() == b"x" * LIMIT

    setting = await small.post(f"{A}/settings/Big", content=b'"' + b"x" * LIMIT + b'"')
    assert setting.status_code == 413
    bulk = await small.post(f"{A}/settings", content=chunks(2 * LIMIT))
    assert bulk.status_code == 413
    assert (await small.get(f"{A}/settings")).json() == {}
    # settings that would grow past the limit are refused as a whole, and kept as they were
    assert (
        await small.post(f"{A}/settings/A", content=b'"' + b"a" * 600 + b'"')
    ).status_code == 200
    assert (
        await small.post(f"{A}/settings/B", content=b'"' + b"b" * 600 + b'"')
    ).status_code == 413
    assert list((await small.get(f"{A}/settings")).json()) == ["A"]
