"""`/{user}/templates/...`: the Templates browser's files, as ComfyUI serves them (its index,
per-locale indexes, logos, each template's workflow and thumbnails), with the workshop's own
workflows first and what the room cannot run marked or hidden (see `service.templates`).

Owner only, like the page's API: 401 logged out, 404 for another user. Anything the service
does not know is a plain 404 (path tricks included: names are looked up, never joined).
"""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from queue_manager.core.ids import UserId

from ..deps import Service
from .access import Owner

router = APIRouter()

# The page re-reads the index each time the browser opens: what it lists follows the room
# (published workflows, GPUs, the instructor's mode). Package files never change while we run.
_FRESH = {"Cache-Control": "no-store"}
_KEEP = {"Cache-Control": "private, max-age=86400"}
# The package's kinds of file, named here rather than left to the host's mime.types.
_TYPES = {".webp": "image/webp", ".png": "image/png", ".jpg": "image/jpeg",
          ".jpeg": "image/jpeg", ".mp3": "audio/mpeg", ".json": "application/json"}  # fmt: skip


@router.get("/templates/{path:path}", include_in_schema=False)
async def template_file(path: str, account: Owner, service: Service) -> Response:
    found = await service.template_file(UserId(account.name), path)
    if found is None:
        return Response(status_code=404)
    if found.path is not None:
        suffix = found.path.suffix.lower()
        media = _TYPES.get(suffix) or mimetypes.guess_type(found.path.name)[0]
        return FileResponse(
            found.path, media_type=media or "application/octet-stream", headers=_KEEP
        )
    return Response(found.body, media_type=found.media_type, headers=_FRESH)
