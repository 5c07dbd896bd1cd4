"""The one-command local workshop: a private redis-server (AOF in the data folder) and the
queue manager, stopped together on Ctrl-C / SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from queue_manager.app import create_app
from queue_manager.redis_server import RedisServer
from queue_manager.settings import Settings

log = logging.getLogger(__name__)


def run_local(settings: Settings) -> None:
    data = settings.data_dir.resolve()
    redis = RedisServer(data / "redis", appendonly=True)
    redis.start()
    try:
        local = settings.model_copy(update={"redis_url": redis.url, "data_dir": data})
        run(local, banner=f"private Redis on {redis.url}, AOF in {data / 'redis'}")
    finally:
        redis.stop()
        log.info("stopped the private Redis")


def run(settings: Settings, banner: str = "") -> None:
    """Serve until Ctrl-C / SIGTERM."""
    url = f"http://{settings.host}:{settings.port}/"
    print(f"Comfy Workshop queue manager: {url}  (health: {url}healthz)", flush=True)
    if banner:
        print(f"  {banner}", flush=True)
    print(f"  data folder: {settings.data_dir.resolve()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        lifespan="on",
    )
    await uvicorn.Server(config).serve()
