"""Serving an ASGI app with uvicorn inside the running event loop, on a port the OS chooses
(or a given one), and stopping it again: what a balanced simulator does for its front and for
every replica it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0  # seconds for uvicorn to bind and run the app's lifespan startup
STOP_TIMEOUT = 10.0
_POLL = 0.01


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its owner. uvicorn's own handler is installed
    and restored per server: with replicas starting and stopping in any order, the restored
    handler could be a stopped server's, and Ctrl-C would reach nobody."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServedApp:
    """One app being served; `url` is its base URL (http://host:port)."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], url: str) -> None:
        self._server = server
        self._task = task
        self.url = url

    @classmethod
    async def start(cls, app: Any, host: str = "127.0.0.1", port: int = 0) -> ServedApp:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            # A proxy passes on its replica's own Date and Server headers.
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=2,
        )
        server = _QuietServer(config)
        task = asyncio.create_task(server.serve(), name=f"uvicorn-{host}:{port}")
        try:
            await _until_started(server, task)
        except BaseException:
            await _stop(server, task)  # cancelled while booting: nothing left behind
            raise
        bound = server.servers[0].sockets[0].getsockname()[1]
        return cls(server, task, f"http://{host}:{bound}")

    async def stop(self) -> None:
        await _stop(self._server, self._task)


async def _until_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(START_TIMEOUT):
        while not server.started:
            if task.done():
                task.result()  # the reason it could not start
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(_POLL)


async def _stop(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    if not done:
        log.warning("uvicorn did not stop within %ss; forcing it", STOP_TIMEOUT)
        server.force_exit = True
        await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.warning("uvicorn stopped with an error: %r", task.exception())
