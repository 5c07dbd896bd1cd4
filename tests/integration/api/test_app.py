"""The ASGI app in-process: health, readiness, and errors mapped to HTTP in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.api import errors
from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.errors import JobNotFound, LimitExceeded, PromptRejected, QueueManagerError
from queue_manager.core.ids import UserId
from tests.support.settings import make_settings


@pytest.fixture
async def client(redis_server: RedisServer, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(redis_server, prefix))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"redis": True, "background": True}


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (JobNotFound("x"), 404),
        (LimitExceeded(UserId("user001"), 3), 429),
        (PromptRejected("the prompt has no nodes"), 400),
        (QueueManagerError("other"), 500),
    ],
)
async def test_domain_errors_become_status_codes_with_a_message(
    exc: QueueManagerError, status: int
) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.get("/boom")
    assert r.status_code == status
    assert r.json()["error"]["message"] == str(exc)
