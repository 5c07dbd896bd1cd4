"""The simulator's `/view`, `/upload/image` and `/upload/mask`, with ComfyUI's rules
(PROTOCOL.md sections 8 and 9): type folders, 400/403/404, Range, preview re-encoding,
and upload naming (same bytes reuse the name, different bytes get "name (1).ext")."""

from __future__ import annotations

import asyncio
import hashlib
import io
import mimetypes
import os
import shutil
from pathlib import Path

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

FOLDERS = ("output", "input", "temp")


class Folders:
    def __init__(self, base: Path) -> None:
        self.base = base
        # ComfyUI empties its temp folder (previews) at every start.
        shutil.rmtree(base / "temp", ignore_errors=True)
        for name in FOLDERS:
            (base / name).mkdir(parents=True, exist_ok=True)

    def of(self, kind: str) -> Path:
        return self.base / kind


async def view(request: Request, folders: Folders) -> Response:
    q = request.query_params
    filename = q.get("filename", "")
    kind = q.get("type", "output") or "output"
    for tag in FOLDERS:  # "name.png [input]" names its folder itself
        if filename.endswith(f" [{tag}]"):
            filename, kind = filename[: -len(tag) - 3], tag
    if not filename:
        return Response(status_code=404)
    if kind not in FOLDERS or filename.startswith("/") or ".." in filename:
        return Response(status_code=400)
    root = folders.of(kind).resolve()
    target_dir = (root / q.get("subfolder", "")).resolve()
    if os.path.commonpath([target_dir, root]) != str(root):
        return Response(status_code=403)
    path = target_dir / filename
    if not path.is_file():
        return Response(status_code=404)
    preview, channel = q.get("preview"), q.get("channel")
    if preview or channel in ("rgb", "a"):
        return await _reencoded(path, filename, preview, channel)
    media = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if media in ("text/html", "text/javascript", "text/css", "application/javascript"):
        media = "application/octet-stream"
    return FileResponse(
        path, media_type=media, headers={"Content-Disposition": f'filename="{filename}"'}
    )


async def _reencoded(
    path: Path, filename: str, preview: str | None, channel: str | None
) -> Response:
    fmt, _, quality = (preview or "").partition(";")
    body, media = await asyncio.to_thread(_encode, path, fmt, int(quality or 90), channel)
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'filename="{filename}"'}
    )


def _encode(path: Path, fmt: str, quality: int, channel: str | None) -> tuple[bytes, str]:
    with Image.open(path) as img:
        out = io.BytesIO()
        if fmt in ("webp", "jpeg"):
            img.convert("RGB").save(out, fmt.upper(), quality=quality)
            return out.getvalue(), f"image/{fmt}"
        rgba = img.convert("RGBA")
        picked = rgba.convert("RGB") if channel == "rgb" else rgba.getchannel("A")
        picked.save(out, "PNG")
        return out.getvalue(), "image/png"


async def upload(request: Request, folders: Folders) -> Response:
    form = await request.form(max_part_size=folders_max_upload())
    image = form.get("image")
    if not isinstance(image, UploadFile) or not image.filename:
        return Response(status_code=400)
    kind = str(form.get("type") or "input")
    if kind not in FOLDERS:
        return Response(status_code=400)
    subfolder = str(form.get("subfolder") or "")
    overwrite = str(form.get("overwrite") or "").lower() in ("true", "1")
    root = folders.of(kind).resolve()
    target_dir = (root / subfolder).resolve()
    name = os.path.basename(image.filename)
    if os.path.commonpath([target_dir, root]) != str(root) or not name or name.startswith("."):
        return Response(status_code=400)
    data = await image.read()
    stored = await asyncio.to_thread(_store, target_dir, name, data, overwrite)
    return JSONResponse({"name": stored, "subfolder": subfolder, "type": kind})


def folders_max_upload() -> int:
    return 104857600


def _store(folder: Path, name: str, data: bytes, overwrite: bool) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, i = name, 1
    while not overwrite and (folder / candidate).exists():
        if _same_bytes(folder / candidate, data):
            return candidate
        candidate = f"{stem} ({i}){'.' + ext if ext else ''}"
        i += 1
    (folder / candidate).write_bytes(data)
    return candidate


def _same_bytes(path: Path, data: bytes) -> bool:
    return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
