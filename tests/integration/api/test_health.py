"""Liveness and readiness while Redis is away: both answer at once; readiness says 503 and what
is missing, liveness stays 200 (an orchestrator must not restart every queue manager during a
Redis outage), and readiness comes back by itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.service.queue import READY_TIMEOUT
from tests.support.settings import make_settings
from tests.support.waiting import until

# Generous against a loaded machine, far below what a retrying Redis client spends (seconds).
PROMPT_ANSWER = READY_TIMEOUT + 1.0


async def test_health_answers_at_once_while_redis_is_away_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    app = create_app(make_settings(server, "health:", data_dir=tmp_path / "data"))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://qm") as client:
                assert (await client.get("/readyz")).json() == {"redis": True, "background": True}
                server.stop()
                async with asyncio.timeout(PROMPT_ANSWER):
                    ready = await client.get("/readyz")
                async with asyncio.timeout(PROMPT_ANSWER):
                    alive = await client.get("/healthz")
                assert ready.status_code == 503
                assert ready.json()["redis"] is False
                assert alive.status_code == 200
                server.start()

                async def ready_again() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                await until(ready_again, 30, "readiness back after Redis returned")
    finally:
        server.stop()
