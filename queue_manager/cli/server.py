"""The uvicorn server that `serve` and `up` run, with a shutdown that ends cleanly.

Two hazards at shutdown. A worker's long poll (`POST /worker/v1/claim`) waits for its client to
hang up; uvicorn would cancel it after its graceful timeout and log the cancellation as an
error with a traceback, for an ordinary Ctrl-C. So once the server shuts down, a request that
has read its whole body and waits only for its client hears `http.disconnect` at once: the
claim hands back what it may have been given and answers 499. And `up`'s own agents should
drain while the manager can still take their results: given `before_exit`, the first Ctrl-C
or SIGTERM runs it (it stops the workers) and the server stops once it says they are gone; a
second one stops the server at once.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BeforeExit = Callable[[Callable[[], None]], None]


class DisconnectAtShutdown:
    """ASGI wrapper: after `stopping` is set, waiting for the client means it is gone."""

    def __init__(self, app: ASGIApp, stopping: asyncio.Event) -> None:
        self.app = app
        self.stopping = stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = False

        async def receive_until_shutdown() -> Message:
            nonlocal body_read
            if body_read:  # the next message can only be the client hanging up
                return await self._disconnect_or_shutdown(receive)
            message = await receive()
            body_read = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, receive_until_shutdown, send)

    async def _disconnect_or_shutdown(self, receive: Receive) -> Message:
        hung_up = asyncio.ensure_future(receive())
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            done, _ = await asyncio.wait({hung_up, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (hung_up, stopping):
                task.cancel()
        return hung_up.result() if hung_up in done else {"type": "http.disconnect"}


class Server(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, stopping: asyncio.Event, before_exit: BeforeExit | None
    ) -> None:
        super().__init__(config)
        self._stopping = stopping
        self._before_exit = before_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        before, self._before_exit = self._before_exit, None
        if before is None or self.should_exit:
            super().handle_exit(sig, frame)
        else:
            before(self._workers_gone)  # runs elsewhere; this is a signal handler

    def _workers_gone(self) -> None:
        self.should_exit = True  # read by the server's loop at its next tick (a plain flag)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stopping.set()
        await super().shutdown(sockets)
