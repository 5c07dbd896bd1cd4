"""`GET /{user}/api/workshop/export.zip` over real HTTP (uvicorn): exactly the participant's
files, never through a planted link, nobody else's export, and streamed as it is read."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi import FastAPI

from tests.support.participants import PASSWORD

EXPORT = "/user001/api/workshop/export.zip"
MB = 1024 * 1024


def data_dir(app: FastAPI) -> Path:
    root: Path = app.state.files.root
    return root


def put(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under `root` with its size and mtime (links as links)."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


@pytest.fixture
async def http(base: str) -> AsyncIterator[dict[str | None, httpx.AsyncClient]]:
    """Clients of the real server: as user001, user002, and logged out (None)."""
    clients = {
        name: httpx.AsyncClient(base_url=base, auth=(name, PASSWORD) if name else None, timeout=30)
        for name in ("user001", "user002", None)
    }
    yield clients
    for client in clients.values():
        await client.aclose()


def alices_and_bobs_files(root: Path) -> dict[str, bytes]:
    """Files of both participants (and what must stay out of alice's zip); returns what her
    zip must hold, by name in the zip."""
    expected = {
        "outputs/ComfyUI_00001_.png": b"png-1",
        "outputs/video/clip_00001_.mp4": b"mp4" * 1000,
        "inputs/photo.jpg": b"jpeg",
        "inputs/masks/photo (1).png": b"mask",
        "workflows/portrait.json": b'{"nodes": []}',
        "workflows/lesson/step 2.json": b'{"nodes": [1]}',
    }
    folders = {
        "outputs": "outputs/user001",
        "inputs": "inputs/user001",
        "workflows": "userdata/user001/workflows",
    }
    for name, data in expected.items():
        area, _, rest = name.partition("/")
        put(root, f"{folders[area]}/{rest}", data)
    put(root, "userdata/user001/comfy.settings.json", b'{"Comfy.TutorialCompleted": true}')
    put(root, "outputs/user001/.0123abcd.part", b"half written")
    put(root, "temp/user001/preview.png", b"scratch")
    put(root, "outputs/user002/bob.png", b"bob's")
    put(root, "inputs/user002/bob.jpg", b"bob's upload")
    put(root, "userdata/user002/workflows/bob.json", b"{}")
    return expected


async def test_the_export_holds_exactly_the_participants_files(
    app: FastAPI, http: dict[str | None, httpx.AsyncClient]
) -> None:
    expected = alices_and_bobs_files(data_dir(app))
    r = await http["user001"].get(EXPORT)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert re.fullmatch(
        r'attachment; filename="user001-workshop-\d{4}-\d{2}-\d{2}\.zip"',
        r.headers["content-disposition"],
    )
    assert r.headers["cache-control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.testzip() is None
        assert {i.filename: z.read(i) for i in z.infolist()} == expected
        kinds = {i.filename: i.compress_type for i in z.infolist()}
    assert kinds["outputs/video/clip_00001_.mp4"] == zipfile.ZIP_STORED  # media as it is
    assert kinds["workflows/portrait.json"] == zipfile.ZIP_DEFLATED


async def test_a_participant_with_nothing_yet_gets_an_empty_zip(
    http: dict[str | None, httpx.AsyncClient],
) -> None:
    r = await http["user001"].get(EXPORT)
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.namelist() == []


async def test_a_link_planted_in_the_folder_is_never_followed(
    app: FastAPI, http: dict[str | None, httpx.AsyncClient], tmp_path: Path
) -> None:
    root = data_dir(app)
    put(root, "outputs/user001/mine.png", b"mine")
    put(root, "outputs/user002/bob.png", b"bob's secret picture")
    secret = put(tmp_path, "outside/secret.txt", b"the server's secret")
    os.symlink(secret, root / "outputs/user001/secret.png")
    os.symlink(root / "outputs/user002", root / "outputs/user001/bob")
    (root / "inputs").mkdir()
    os.symlink(secret.parent, root / "inputs/user001", target_is_directory=True)
    (root / "userdata/user001").mkdir(parents=True)
    os.symlink(root / "userdata/user002", root / "userdata/user001/workflows")
    r = await http["user001"].get(EXPORT)
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.namelist() == ["outputs/mine.png"]
    assert b"secret" not in r.content


async def test_another_users_export_is_a_plain_404_and_changes_nothing(
    app: FastAPI, http: dict[str | None, httpx.AsyncClient]
) -> None:
    root = data_dir(app)
    alices_and_bobs_files(root)
    before = snapshot(root)
    r = await http["user002"].get(EXPORT)
    unknown = await http["user002"].get("/user001/api/no-such-route")
    assert r.status_code == 404
    assert (r.headers["content-type"], r.content) == (
        unknown.headers["content-type"],
        unknown.content,
    )
    assert "content-disposition" not in r.headers
    # The instructor is not the participant either: their page's export is theirs alone.
    assert (await http["user002"].get("/user002/api/workshop/export.zip")).status_code == 200
    assert snapshot(root) == before


async def test_logged_out_the_export_asks_for_a_login_like_other_routes(
    app: FastAPI, http: dict[str | None, httpx.AsyncClient]
) -> None:
    alices_and_bobs_files(data_dir(app))
    r = await http[None].get(EXPORT)
    other = await http[None].get("/user001/api/queue")
    assert r.status_code == other.status_code == 401
    assert r.headers["www-authenticate"] == other.headers["www-authenticate"]
    assert b"png" not in r.content


async def test_a_big_export_streams_without_holding_it_in_memory(
    app: FastAPI, http: dict[str | None, httpx.AsyncClient]
) -> None:
    """A 256 MiB file (sparse: no disk used) through the real server, in this very process:
    memory grows by a small fraction of it, and the body arrives in many pieces."""
    size = 256 * MB
    big = data_dir(app) / "outputs/user001/big.mp4"
    big.parent.mkdir(parents=True)
    with big.open("wb") as f:
        f.truncate(size)
    process = psutil.Process()
    start = process.memory_info().rss
    peak, pieces, received = start, 0, 0
    async with http["user001"].stream("GET", EXPORT) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers  # chunked: see storage.export
        async for piece in r.aiter_raw():
            pieces += 1
            received += len(piece)
            if pieces % 64 == 0:
                peak = max(peak, process.memory_info().rss)
    peak = max(peak, process.memory_info().rss)
    assert received > size
    assert pieces > 100
    assert peak - start < 64 * MB, f"memory grew by {(peak - start) // MB} MiB"
