"""The instructor's gallery (`/admin/api/gallery...`) and "show everyone" (`/admin/api/showcase`).

Instructor only (participants get 403, as on every admin route). Files are named by job and
output number, never by a path: the service finds the recorded output and opens it safely.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from queue_manager.comfy import view as comfy
from queue_manager.core.gallery import (
    MAX_CAPTION,
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    GalleryPage,
    Showcase,
)
from queue_manager.core.ids import JobId, UserId
from queue_manager.storage.images import NotAnImage
from queue_manager.storage.thumbnails import MEDIA_TYPE, thumbnail

from ..auth import Instructor
from ..deps import Service
from ..participant.files import _send_file as send_file  # one way to send a file: /view's

router = APIRouter(prefix="/api", tags=["admin"])

# A thumbnail changes only with its file (outputs are never overwritten): cache it for a day.
_THUMB_CACHE = "private, max-age=86400"
_ID = r"^[A-Za-z0-9_.:-]{1,128}$"


class ShowBody(BaseModel):
    job: JobId = Field(pattern=_ID)
    index: int = Field(ge=0, le=10_000)
    author: bool = Field(default=False, description="Show the author's name with it.")
    caption: str = Field(default="", max_length=MAX_CAPTION)


class Done(BaseModel):
    ok: bool = True


@router.get("/gallery")
async def gallery(
    _: Instructor,
    service: Service,
    user: Annotated[UserId | None, Query(pattern=_ID)] = None,
    after: Annotated[JobId | None, Query(pattern=_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> GalleryPage:
    """Completed jobs with their outputs, newest first (everyone's, or `user`'s); pass the
    answer's `next` as `after` for the following page."""
    return await service.gallery(user, after, limit)


@router.get("/gallery/{job_id}/outputs/{index}")
async def output_file(job_id: JobId, index: int, request: Request, _: Instructor,
                      service: Service) -> Response:  # fmt: skip
    """The output itself (ranges and validators as `/view`)."""
    file, output = await service.open_output(job_id, index)
    return send_file(request, file, output.filename, head=False)


@router.get("/gallery/{job_id}/outputs/{index}/thumbnail")
async def output_thumbnail(job_id: JobId, index: int, request: Request, _: Instructor,
                           service: Service) -> Response:  # fmt: skip
    """A small WebP of an image output (415 for other media: the dashboard shows an icon)."""
    file, output = await service.open_output(job_id, index)
    if output.media != "image":
        file.close()
        return Response(status_code=415)
    info = os.fstat(file.fileno())
    tag = comfy.etag(info.st_mtime_ns, info.st_size)
    headers = {"etag": tag, "cache-control": _THUMB_CACHE}
    if comfy.not_modified(request.headers, tag, info.st_mtime):
        file.close()
        return Response(status_code=304, headers=headers)
    try:
        body = await asyncio.to_thread(thumbnail, file)
    except NotAnImage:
        return Response(status_code=415)
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


@router.get("/gallery/{job_id}/workflow")
async def workflow(job_id: JobId, _: Instructor, service: Service) -> JSONResponse:
    """The workflow that made the job, as a file to open in ComfyUI."""
    name, graph = await service.gallery_workflow(job_id)
    headers = {"content-disposition": "attachment; " + comfy.content_disposition(name)}
    return JSONResponse(graph, headers=headers)


@router.get("/showcase")
async def showcase(_: Instructor, service: Service) -> dict[str, Any]:
    """What every participant sees now (`shown`: null when nothing), with its job and output."""
    return _for_instructor(await service.showcase())


@router.put("/showcase")
async def show(body: ShowBody, account: Instructor, service: Service) -> dict[str, Any]:
    """Put one output on every participant's screen (it replaces the one shown)."""
    shown = await service.show_output(
        body.job, body.index, with_author=body.author, caption=body.caption, by=account.name
    )
    return _for_instructor(shown)


@router.delete("/showcase")
async def stop(account: Instructor, service: Service) -> Done:
    """Take it off every screen."""
    await service.stop_showing(account.name)
    return Done()


def _for_instructor(shown: Showcase | None) -> dict[str, Any]:
    """What the pages see, and which output of whose it is (the dashboard marks it)."""
    if shown is None:
        return {"shown": None}
    return {"shown": shown.public() | {"job": shown.job, "index": shown.index, "user": shown.user}}
