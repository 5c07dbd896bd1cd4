"""The dashboard's static files (no build step): `/admin/` and `/admin/static/...`."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from admin import STATIC_DIR
from queue_manager.core.accounts import Role
from queue_manager.storage.static_files import file_inside

from ..auth import authenticate

router = APIRouter(include_in_schema=False)


async def _instructor_or_login(request: Request) -> Response | None:
    account = await authenticate(request)
    if account is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if account.role is not Role.INSTRUCTOR:
        raise HTTPException(403, "for the instructor only")
    return None


@router.get("")
async def without_slash() -> RedirectResponse:
    return RedirectResponse("/admin/", status_code=307)


@router.get("/")
async def dashboard(request: Request) -> Response:
    if (redirect := await _instructor_or_login(request)) is not None:
        return redirect
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/static/{name:path}")
async def static(request: Request, name: str) -> Response:
    if (redirect := await _instructor_or_login(request)) is not None:
        return redirect
    target = await asyncio.to_thread(file_inside, STATIC_DIR, name)
    if target is None:
        return Response(status_code=404)
    return FileResponse(target, headers={"Cache-Control": "no-cache"})
