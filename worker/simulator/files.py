"""The simulator's `/view`, `/upload/image` and `/upload/mask`, with ComfyUI's rules
(PROTOCOL.md sections 8 and 9): type folders, 400/403/404, Range, preview re-encoding,
upload naming (same bytes reuse the name, different bytes get "name (1).ext"), and the mask
upload's alpha merge into the picture its `original_ref` names."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import mimetypes
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

FOLDERS = ("output", "input", "temp")
# Served as downloads, never displayed (ComfyUI's list).
_FORCED_DOWNLOAD = frozenset(
    {
        "text/html",
        "text/html-sandboxed",
        "application/xhtml+xml",
        "text/javascript",
        "application/javascript",
        "text/css",
    }
)


class ComfyJSONResponse(JSONResponse):
    """aiohttp's `json_response` content type, which ComfyUI's answers carry."""

    media_type = "application/json; charset=utf-8"


class Folders:
    def __init__(self, base: Path, elsewhere: Mapping[str, Path] | None = None) -> None:
        """`elsewhere`: folders kept outside `base` by kind ("input", "output"), as ComfyUI's
        --input-directory and --output-directory place them."""
        self.base = base
        self.elsewhere = dict(elsewhere or {})
        # ComfyUI empties its temp folder (previews) at every start.
        shutil.rmtree(self.of("temp"), ignore_errors=True)
        for name in FOLDERS:
            self.of(name).mkdir(parents=True, exist_ok=True)

    def of(self, kind: str) -> Path:
        return self.elsewhere.get(kind, self.base / kind)


def annotated(name: str) -> tuple[str, str | None]:
    """ComfyUI's `annotated_filepath`: "x.png [output]" -> ("x.png", "output"). Like ComfyUI it
    drops one character more than the tag (the space before it)."""
    for kind in FOLDERS:
        if name.endswith(f"[{kind}]"):
            return name[: -len(kind) - 3], kind
    return name, None


async def view(request: Request, folders: Folders) -> Response:
    q = request.query_params
    path = _viewed_file(q, folders)
    if isinstance(path, int):
        return Response(status_code=path)
    filename = path.name
    disposition = {"Content-Disposition": f'filename="{filename}"'}
    preview, channel = q.get("preview"), q.get("channel", "")
    if preview is not None or channel in ("rgb", "a"):
        body, media = await asyncio.to_thread(_reencode, path, preview, channel)
        return Response(body, media_type=media, headers=disposition)
    media = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if media in _FORCED_DOWNLOAD:
        media = "application/octet-stream"
    return FileResponse(path, media_type=media, headers=disposition)


def _viewed_file(q: Mapping[str, str], folders: Folders) -> Path | int:
    """The file `/view` names, or the status ComfyUI refuses it with."""
    if "filename" not in q:
        return 404
    filename, kind = annotated(q["filename"])
    if not filename or filename[0] == "/" or ".." in filename:
        return 400
    kind = kind or q.get("type", "output")
    if kind not in FOLDERS:
        return 400
    root = os.path.abspath(folders.of(kind))
    directory = root
    if "subfolder" in q:
        directory = os.path.abspath(os.path.join(root, q["subfolder"]))
        if os.path.commonpath((directory, root)) != root:
            return 403
    path = Path(directory, os.path.basename(filename))
    return path if path.is_file() else 404


def _reencode(path: Path, preview: str | None, channel: str) -> tuple[bytes, str]:
    """`preview=webp;50` / `preview=jpeg;80`, `channel=rgb` / `channel=a`, as ComfyUI answers
    them (`server.py` view_image)."""
    out = io.BytesIO()
    with Image.open(path) as img:
        if preview is not None:
            parts = preview.split(";")
            fmt = parts[0] if parts[0] in ("webp", "jpeg") and "a" not in channel else "webp"
            quality = int(parts[-1]) if parts[-1].isdigit() else 90
            picture: Image.Image = img
            if fmt == "jpeg" or channel == "rgb":
                picture = img.convert("RGB")
            picture.save(out, fmt, quality=quality)
            return out.getvalue(), f"image/{fmt}"
        if channel == "rgb":
            img.convert("RGB").save(out, "PNG")
            return out.getvalue(), "image/png"
        alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
        # The alpha channel as a picture: black, as transparent as the original.
        alpha_img = Image.new("RGBA", img.size)
        alpha_img.putalpha(alpha)
        alpha_img.save(out, "PNG")
        return out.getvalue(), "image/png"


async def upload(request: Request, folders: Folders) -> Response:
    """`/upload/image`, and `/upload/mask` (whose form also names an `original_ref`)."""
    async with request.form(max_part_size=folders_max_upload()) as form:  # closes the files
        return await _upload(request, form, folders)


async def _upload(request: Request, form: FormData, folders: Folders) -> Response:
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
    original: Path | None = None
    if request.url.path.endswith("/upload/mask"):
        ref = _original_ref(form.get("original_ref"), folders)
        if isinstance(ref, Response):
            return ref
        original = ref
    stored = await asyncio.to_thread(_store, target_dir, name, data, overwrite, original)
    return ComfyJSONResponse({"name": stored, "subfolder": subfolder, "type": kind})


def folders_max_upload() -> int:
    return 104857600


def _original_ref(raw: Any, folders: Folders) -> Path | Response:
    """The file a mask upload's `original_ref` ({filename, subfolder, type}) names."""
    try:
        ref = json.loads(str(raw))
        filename, kind = annotated(str(ref["filename"]))
    except (ValueError, KeyError, TypeError):
        return Response(status_code=400)
    if not filename or filename[0] == "/" or ".." in filename:
        return Response(status_code=400)
    kind = kind or str(ref.get("type", "output"))
    if kind not in FOLDERS:
        return Response(status_code=400)
    root = os.path.abspath(folders.of(kind))
    directory = os.path.abspath(os.path.join(root, str(ref.get("subfolder") or "")))
    if os.path.commonpath((directory, root)) != root:
        return Response(status_code=403)
    return Path(directory, filename)


def _store(folder: Path, name: str, data: bytes, overwrite: bool, original: Path | None) -> str:
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
    if original is None:
        (folder / candidate).write_bytes(data)
    elif original.is_file():  # ComfyUI stores nothing when the original is missing
        _merge_mask(original, data, folder / candidate)
    return candidate


def _merge_mask(original: Path, mask: bytes, target: Path) -> None:
    """ComfyUI's mask upload: the original picture (and its PNG text) with the mask's alpha."""
    with Image.open(original) as source:
        info = PngInfo()
        for key, value in getattr(source, "text", {}).items():
            info.add_text(key, value)
        merged = source.convert("RGBA")
    with Image.open(io.BytesIO(mask)) as uploaded:
        merged.putalpha(uploaded.convert("RGBA").getchannel("A"))
    merged.save(target, "PNG", compress_level=4, pnginfo=info)


def _same_bytes(path: Path, data: bytes) -> bool:
    return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
