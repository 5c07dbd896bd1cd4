"""`GET /metrics`: Prometheus text format, for a scraper with `CW_METRICS_TOKEN` (Bearer) or
the instructor's login; nobody else (the room's shape is nobody else's business)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from .auth import require_account, require_instructor
from .deps import Service, get_service


async def may_scrape(request: Request) -> None:
    token = (await get_service(request)).settings.metrics_token.get_secret_value()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return
    await require_instructor(await require_account(request))


router = APIRouter(tags=["health"])


@router.get("/metrics", dependencies=[Depends(may_scrape)], response_class=PlainTextResponse)
async def metrics(service: Service) -> Response:
    return Response(await service.metrics_text(), media_type=CONTENT_TYPE_LATEST)
