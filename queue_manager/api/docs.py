"""`/docs` and `/openapi.json`: the API's own description, for the instructor (every route,
the admin controls and the worker API included), or for anyone with `CW_PUBLIC_API_DOCS`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from .auth import require_account, require_instructor
from .deps import get_service


async def may_read_docs(request: Request) -> None:
    if not (await get_service(request)).settings.public_api_docs:
        await require_instructor(await require_account(request))


router = APIRouter(include_in_schema=False, dependencies=[Depends(may_read_docs)])


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=request.app.title)
