"""The ComfyUI page itself: the official frontend's static files under `/{user}/`, and our
workshop extension. The page uses relative URLs, so `/user001/` makes every request it sends
land under `/user001/api/...`.

A visitor who is not logged in is sent to the login page (and back); another user's page is a
plain 404.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from frontend import EXTENSION_DIR
from queue_manager.api.auth import authenticate
from queue_manager.storage.static_files import file_inside

from .access import NotFound

router = APIRouter()
# The page asks for a few assets by absolute path (`/assets/images/favicon_progress_16x16/...`):
# the frontend's own files, the same for everyone, served without a login.
shared = APIRouter()

try:
    import comfyui_frontend_package

    STATIC_DIR: Path | None = Path(comfyui_frontend_package.__file__).parent / "static"
except ImportError:  # the page is optional for the worker-only install
    STATIC_DIR = None

_EXTENSION_PREFIX = "extensions/comfy-workshop/"
# Same rules as ComfyUI's cache middleware: the page and scripts are revalidated (a new
# frontend version must be picked up), hashed assets and images may be kept.
_NO_STORE = {"Cache-Control": "no-store, must-revalidate", "Pragma": "no-cache", "Expires": "0"}
_REVALIDATE = {"Cache-Control": "no-cache"}
_KEEP = {"Cache-Control": "private, max-age=86400"}
_SCRIPT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}
# The page talks to this server only (its API, its socket, files the participant drops in):
# a backstop to the workshop's default settings that switch the frontend's calls home off.
# A workshop network may be offline or private, and a participant's browser should not tell
# third parties who is in the room. Scripts, styles and images are left to the frontend.
_ONLY_HOME = {"Content-Security-Policy": "connect-src 'self' blob: data:"}


async def _owner_or_login(request: Request, user: str) -> Response | None:
    account = await authenticate(request)
    if account is None:
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/login?next={target}", status_code=303)
    if account.name != user:
        raise NotFound()
    return None


@router.get("", include_in_schema=False)
async def without_slash(user: str) -> RedirectResponse:
    """`/user001` -> `/user001/`: the page takes its base path from the URL's last slash."""
    return RedirectResponse(f"/{quote(user, safe='')}/", status_code=307)


@router.get("/", include_in_schema=False)
async def index(request: Request, user: str) -> Response:
    if (redirect := await _owner_or_login(request, user)) is not None:
        return redirect
    return _file(_static_root(request) / "index.html", _NO_STORE | _ONLY_HOME)


@router.get("/user.css", include_in_schema=False)
async def user_css(request: Request, user: str) -> Response:
    """The page links `user.css` beside `api/userdata/user.css` (the participant's own, which
    they may save): ComfyUI has none and answers 404 at every load; ours is empty."""
    if (redirect := await _owner_or_login(request, user)) is not None:
        return redirect
    return Response(b"", media_type="text/css; charset=utf-8", headers=_REVALIDATE)


@router.get("/{path:path}", include_in_schema=False)
async def static(request: Request, user: str, path: str) -> Response:
    if (redirect := await _owner_or_login(request, user)) is not None:
        return redirect
    if path.startswith(_EXTENSION_PREFIX):
        root, rel = EXTENSION_DIR, path.removeprefix(_EXTENSION_PREFIX)
    else:
        root, rel = _static_root(request), path
    target = await asyncio.to_thread(file_inside, root, rel)
    if target is None:
        return Response(status_code=404)
    suffix = target.suffix.lower()
    headers = _REVALIDATE if suffix in _SCRIPT_TYPES or suffix == ".json" else _KEEP
    return _file(target, headers)


@shared.get("/assets/{path:path}", include_in_schema=False)
async def shared_asset(request: Request, path: str) -> Response:
    target = await asyncio.to_thread(file_inside, _static_root(request) / "assets", path)
    if target is None:
        return Response(status_code=404)
    return _file(target, _KEEP)


def _static_root(request: Request) -> Path:
    """The frontend the operator chose (`CW_FRONTEND_DIR`), else the pinned package's."""
    chosen: Path | None = request.app.state.service.settings.frontend_dir
    root = chosen or STATIC_DIR
    if root is None:
        raise HTTPException(503, "the ComfyUI frontend package is not installed")
    return root


def _file(path: Path, headers: dict[str, str]) -> FileResponse:
    media = _SCRIPT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    return FileResponse(path, media_type=media or "application/octet-stream", headers=headers)
