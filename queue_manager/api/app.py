"""The queue manager's ASGI application: built from settings, state owned by the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from queue_manager import __version__
from queue_manager.api import admin, errors, health, login, metrics, participant, worker
from queue_manager.api.auth import Sessions
from queue_manager.api.sockets import encode
from queue_manager.core.ids import WorkerId
from queue_manager.service.catalog import Catalog
from queue_manager.service.metrics import Metrics
from queue_manager.service.queue import QueueService
from queue_manager.service.room_feed import RoomFeed
from queue_manager.settings import Settings
from queue_manager.storage.files import FileStore
from queue_manager.store.accounts import AccountStore
from queue_manager.store.catalog import CatalogStore
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from queue_manager.store.tokens import TokenStore


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(str(settings.redis_url))
        service = QueueService(settings, redis)
        app.state.service = service
        app.state.tokens = tokens = TokenStore(redis, Keys(settings.key_prefix))
        for name, secret in settings.preset_worker_tokens():
            await tokens.install(WorkerId(name), secret)
        app.state.files = FileStore(settings.data_dir)
        keys = Keys(settings.key_prefix)
        app.state.catalog = Catalog(CatalogStore(redis, keys), service.workers)
        app.state.accounts = AccountStore(redis, Keys(settings.key_prefix))
        app.state.sessions = Sessions(
            settings.secret_key.get_secret_value(),
            int(settings.session_hours * 3600),
            settings.cookie_secure,
        )
        app.state.metrics = metrics = Metrics()
        app.state.room_feed = room_feed = RoomFeed(service, app.state.accounts, encode)
        try:
            async with service.running():
                following = asyncio.create_task(metrics.follow(service.hub), name="metrics")
                try:
                    yield
                finally:
                    await room_feed.close()
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
        finally:
            await redis.aclose()

    app = FastAPI(title="Comfy Workshop queue manager", version=__version__, lifespan=lifespan)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(worker.router)
    app.include_router(login.router)
    app.include_router(admin.router())
    app.include_router(metrics.router)
    app.include_router(participant.router())  # last: `/{user}/...` takes what is left
    return app
