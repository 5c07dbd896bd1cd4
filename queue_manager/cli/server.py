"""The uvicorn server that `serve` and `up` run, with a shutdown that ends cleanly.

Two hazards at shutdown. A worker's long poll (`POST /worker/v1/claim`) waits for its client to
hang up; uvicorn would cancel it after its graceful timeout and log the cancellation as an
error with a traceback, for an ordinary Ctrl-C. So once the server shuts down, a request that
has read its whole body and waits only for its client hears `http.disconnect` at once: the
claim hands back what it may have been given and answers 499. And `up`'s own agents should
drain while the manager can still take their results: given `before_exit`, the first Ctrl-C
or SIGTERM runs it (it stops the workers) and the server stops once it says they are gone; a
second one stops the server at once.

And a peer that stops reading (a frozen browser tab) must not keep its connection for ever:
when a stalled WebSocket is closed (api/sockets.py), uvicorn closes its transport gently,
which waits for the megabytes queued for the peer to drain, and they never do while the
peer's kernel keeps answering window probes. The kernel is told to drop any connection
whose sent data stays unacknowledged for `UNACKED_LIMIT` (TCP_USER_TIMEOUT on the listening
socket, inherited by each connection it accepts).
"""

from __future__ import annotations

import asyncio
import socket
from asyncio.trsock import TransportSocket
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queue_manager.api.sockets import SEND_TIMEOUT

BeforeExit = Callable[[Callable[[], None]], None]

# Longer than a WebSocket may stall before the app closes it (its close frame goes first when
# the peer still reads), and long enough for a slow but living network.
UNACKED_LIMIT = 2 * SEND_TIMEOUT


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

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for server in getattr(self, "servers", []):  # none if it could not listen
            for listener in server.sockets:
                drop_silent_peers(listener)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stopping.set()
        await super().shutdown(sockets)


def drop_silent_peers(listener: socket.socket | TransportSocket) -> None:
    """TCP_USER_TIMEOUT on a listening TCP socket (Linux; elsewhere, and on Unix sockets,
    nothing is set)."""
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is not None and listener.family in (socket.AF_INET, socket.AF_INET6):
        listener.setsockopt(socket.IPPROTO_TCP, option, int(UNACKED_LIMIT * 1000))
