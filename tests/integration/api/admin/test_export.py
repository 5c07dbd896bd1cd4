"""`GET /admin/api/export.zip` over real HTTP: the room's work, a folder per user, for the
instructor only."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.support.participants import PASSWORD

EXPORT = "/admin/api/export.zip"


def put(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def test_the_instructor_exports_the_room_a_folder_per_user(app: FastAPI, base: str) -> None:
    root: Path = app.state.files.root
    put(root, "outputs/user001/a.png", b"alice's")
    put(root, "inputs/user001/photo.jpg", b"alice's upload")
    put(root, "userdata/user001/workflows/w.json", b"{}")
    put(root, "userdata/user001/comfy.settings.json", b"{}")
    put(root, "outputs/user002/b.png", b"bob's")
    put(root, "temp/user002/scratch.png", b"scratch")
    async with httpx.AsyncClient(base_url=base, auth=("teacher", PASSWORD), timeout=30) as c:
        r = await c.get(EXPORT)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert re.fullmatch(
        r'attachment; filename="workshop-room-\d{4}-\d{2}-\d{2}\.zip"',
        r.headers["content-disposition"],
    )
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.testzip() is None
        assert {n: z.read(n) for n in z.namelist()} == {
            "user001/outputs/a.png": b"alice's",
            "user001/inputs/photo.jpg": b"alice's upload",
            "user001/workflows/w.json": b"{}",
            "user002/outputs/b.png": b"bob's",
        }


async def test_a_participant_cannot_reach_the_room_export(
    app: FastAPI, alice: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    put(app.state.files.root, "outputs/user002/b.png", b"bob's")
    refused = await alice.get(EXPORT)
    assert refused.status_code == 403
    assert b"bob" not in refused.content
    assert "content-disposition" not in refused.headers
    assert (await nobody.get(EXPORT)).status_code == 401
