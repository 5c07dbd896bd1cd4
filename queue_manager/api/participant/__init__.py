"""Everything under `/{user}/`: the ComfyUI page and the API it calls, for that user only.

ComfyUI registers each API route twice, as `/x` and `/api/x`; the page uses `/api/x`. The
`/internal/...` routes, the static files and the socket are not aliased.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from . import export, files, pages, queue, server, showcase, socket, templates, userdata, workflows
from .access import check_origin


def router() -> APIRouter:
    root = APIRouter(dependencies=[Depends(check_origin)])
    root.include_router(pages.shared)  # before `/{user}/...`, which would take `/assets/...`
    for module in (queue, files, userdata, server, workflows):
        root.include_router(module.router, prefix="/{user}/api", tags=["participant"])
        root.include_router(module.router, prefix="/{user}", include_in_schema=False)
    root.include_router(files.internal, prefix="/{user}/internal", tags=["participant"])
    root.include_router(server.internal, prefix="/{user}/internal", include_in_schema=False)
    root.include_router(export.router, prefix="/{user}/api", tags=["participant"])
    root.include_router(showcase.router, prefix="/{user}/api", tags=["participant"])
    root.include_router(socket.router, prefix="/{user}")
    root.include_router(templates.router, prefix="/{user}", include_in_schema=False)
    root.include_router(pages.router, prefix="/{user}")  # last: it serves any other file
    return root
