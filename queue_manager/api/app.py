"""The queue manager's ASGI application: built from settings, state owned by the lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from queue_manager import __version__
from queue_manager.api import admin, docs, errors, health, login, metrics, participant, worker
from queue_manager.api import cards as login_cards
from queue_manager.api.auth import Sessions
from queue_manager.api.sockets import encode
from queue_manager.core.clock import Clock
from queue_manager.settings import Settings
from queue_manager.workshop import open_workshop


def create_app(settings: Settings, *, clock: Clock = time.time) -> FastAPI:
    """`clock` is the workshop's wall clock (tests move it: leases, sessions, login back-off)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_workshop(settings, encode, clock) as workshop:
            app.state.service = workshop.queue
            app.state.accounts = workshop.accounts
            app.state.files = workshop.files
            app.state.room_feed = workshop.room_feed
            app.state.tokens = workshop.tokens
            app.state.cards = workshop.cards
            app.state.setting_defaults = workshop.setting_defaults
            app.state.sessions = Sessions(
                settings.secret_key.get_secret_value(),
                int(settings.session_hours * 3600),
                settings.cookie_secure,
            )
            app.state.trusted_proxies = settings.trusted_networks()
            yield

    # The API's description is served by `api.docs`, behind the instructor's login.
    app = FastAPI(
        title="Comfy Workshop queue manager",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    errors.install(app)
    app.include_router(health.router)
    app.include_router(worker.router)
    app.include_router(login.router)
    app.include_router(login_cards.router)
    app.include_router(admin.router())
    app.include_router(metrics.router)
    app.include_router(docs.router)
    app.include_router(participant.router())  # last: `/{user}/...` takes what is left
    return app
