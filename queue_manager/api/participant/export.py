"""`GET /{user}/api/workshop/export.zip`: everything the participant made, as one zip to take
home (`outputs/`, `inputs/`, `workflows/`), streamed as it is read (`storage.export`).

Only the owner gets it (`Owner`): someone else's export answers 404 like any other path of
theirs, and nobody's files but the owner's can be named or reached.
"""

from __future__ import annotations

import asyncio
from datetime import date

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from queue_manager.storage.export import plan_user, zip_chunks
from queue_manager.storage.export_plan import content_disposition, download_name

from ..deps import Files
from .access import Owner

router = APIRouter()

# Never cached on the way (it changes with every output), never sniffed as something else.
ZIP_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


@router.get("/workshop/export.zip", response_class=StreamingResponse)
async def export_zip(account: Owner, files: Files) -> StreamingResponse:
    """The participant's outputs, uploads and saved workflows, streamed (chunked: its length is
    only known once every file has been read)."""
    chosen = await asyncio.to_thread(plan_user, files.root, account.name)
    name = download_name(account.name, date.today())
    headers = ZIP_HEADERS | {"content-disposition": content_disposition(name)}
    # A plain iterator: Starlette takes each chunk in a worker thread (the reads block).
    return StreamingResponse(
        zip_chunks(files.root, chosen), media_type="application/zip", headers=headers
    )
