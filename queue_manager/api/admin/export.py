"""`GET /admin/api/export.zip`: the whole room's work as one zip, a folder per user (each as
that user's own export), streamed as it is read. The instructor's only (403 for others)."""

from __future__ import annotations

import asyncio
from datetime import date

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from queue_manager.storage.export import plan_room, zip_chunks
from queue_manager.storage.export_plan import content_disposition, room_download_name

from ..auth import Instructor
from ..deps import Files
from ..participant.export import ZIP_HEADERS

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/export.zip", response_class=StreamingResponse)
async def export_room(_: Instructor, files: Files) -> StreamingResponse:
    """Every user's outputs, uploads and saved workflows under `<user>/`, streamed (chunked)."""
    chosen = await asyncio.to_thread(plan_room, files.root)
    headers = ZIP_HEADERS | {
        "content-disposition": content_disposition(room_download_name(date.today()))
    }
    return StreamingResponse(
        zip_chunks(files.root, chosen), media_type="application/zip", headers=headers
    )
