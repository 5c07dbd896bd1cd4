"""`GET /metrics`: Prometheus text format (restrict it to the monitoring host in nginx)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from queue_manager.service.metrics import Metrics

from .deps import Service

router = APIRouter(tags=["health"])


@router.get("/metrics")
async def metrics(request: Request, service: Service) -> Response:
    found: Metrics = request.app.state.metrics
    return Response(await found.render(service), media_type=CONTENT_TYPE_LATEST)
