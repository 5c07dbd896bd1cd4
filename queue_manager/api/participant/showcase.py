"""`/{user}/api/workshop/showcase`: the output the instructor shows to everyone, for the
workshop extension's panel (its first load; later changes come as `workshop.showcase` pushes).

This is the only way a participant reaches another participant's file, and it reaches exactly
the one shown now: no name, path or job in the request chooses it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import JsonValue

from queue_manager.core.gallery import NOTHING_SHOWN

from ..deps import Service
from .access import Owner
from .files import _send_file as send_file  # one way to send a file: /view's

router = APIRouter()


@router.get("/workshop/showcase")
async def showcase(_: Owner, service: Service, response: Response) -> dict[str, JsonValue]:
    """`{"id": null}` when nothing is shown; else its id, media, caption, author (or null)
    and when it was put up."""
    response.headers["cache-control"] = "no-store"
    shown = await service.showcase()
    return shown.public() if shown is not None else dict(NOTHING_SHOWN)


@router.get("/workshop/showcase/image")
async def showcase_file(
    request: Request,
    _: Owner,
    service: Service,
    v: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The shown output's file (404 when nothing, or not `v`, is shown). Its own name stays
    with its author: the page gets `showcase.<ext>`."""
    file, shown = await service.open_showcase(v)
    _stem, dot, ext = shown.filename.rpartition(".")
    response = send_file(request, file, f"showcase.{ext}" if dot else "showcase", head=False)
    response.headers["x-content-type-options"] = "nosniff"
    return response
