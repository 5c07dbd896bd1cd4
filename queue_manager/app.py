"""The queue manager's ASGI application: built from settings, state owned by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from queue_manager import __version__
from queue_manager.api import errors, health
from queue_manager.service import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(str(settings.redis_url))
        service = QueueService(settings, redis)
        app.state.service = service
        try:
            async with service.running():
                yield
        finally:
            await redis.aclose()

    app = FastAPI(title="Comfy Workshop queue manager", version=__version__, lifespan=lifespan)
    errors.install(app)
    app.include_router(health.router)
    return app
