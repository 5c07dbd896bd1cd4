"""`/admin/ws`: the dashboard's live feed.

Every event goes out as it comes: its frame is encoded once per process and written to each
dashboard from the stream reader's dispatch itself, as `websockets.broadcast` does, while the
socket takes it without waiting; a socket whose sends must wait gets its events queued by its
subscription (progress and previews coalesced, every other event kept, in order) and sent by
its own task. The whole room state follows whenever something changed: built and encoded once
per process for every dashboard (`room_feed.RoomFeed`). A dashboard that stalls is
closed, never waited for; it reconnects and the first state resyncs it. Prompts and
workflows are never sent: events carry none.

When the instructor's own sessions end or their password or role changes
(`account.signed_out`), the socket checks its credentials again and closes with 1008 if they
no longer make an instructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TypeGuard

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from queue_manager.core.accounts import Account, Role
from queue_manager.core.events import Event, EventType
from queue_manager.service.fanout import Overflowed, Subscription
from queue_manager.service.queue import QueueService
from queue_manager.service.room_feed import RoomFeed

from ..auth import authenticate_socket
from ..participant.access import same_origin
from ..sockets import GuardedSocket, Stalled, until_first_ends

log = logging.getLogger(__name__)
router = APIRouter()


@router.websocket("/ws")
async def admin_socket(websocket: WebSocket) -> None:
    account = await authenticate_socket(websocket)
    if not _is_instructor(account) or not same_origin(websocket):
        await websocket.close(code=1008)  # before accept: the handshake gets 403
        return
    await websocket.accept()
    service: QueueService = websocket.app.state.service
    room: RoomFeed = websocket.app.state.room_feed
    feed = _Feed(websocket, service, room, account)
    code = 1013  # try again later: the dashboard reconnects and resyncs
    with contextlib.suppress(Stalled, Overflowed, WebSocketDisconnect):
        try:
            await feed.run()
        except _SignedOut:
            log.info("dashboard socket of %s closed: signed out", account.name)
            code = 1008  # policy: these credentials no longer hold
    if websocket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=code)


def _is_instructor(account: Account | None) -> TypeGuard[Account]:
    return account is not None and account.role is Role.INSTRUCTOR


class _SignedOut(Exception):
    """The instructor's session ended, or their password or role changed."""


class _Feed:
    def __init__(
        self, ws: WebSocket, service: QueueService, room: RoomFeed, account: Account
    ) -> None:
        self.ws = ws
        self.out = GuardedSocket(ws)
        self.service = service
        self.room = room
        self.account = account
        self._catching_up = False  # `_events` is sending what queued up
        self._sending: asyncio.Task[None] | None = None  # a send that had to wait

    async def run(self) -> None:
        with self.service.subscribe(None) as sub:
            sub.direct = self._send_at_once
            self.room.changed()
            try:
                await until_first_ends(
                    self._events(sub),
                    self._states(),
                    self._until_closed(),
                    self.out.watch(),
                )
            finally:
                if self._sending is not None:
                    self._sending.cancel()

    def _send_at_once(self, event: Event) -> bool:
        """The reader's dispatch hands the event straight to the socket (no task wake-up per
        socket per event), unless something is still on its way or the event needs a look
        first: then it queues, and `_events` sends it in order."""
        if self._catching_up or event.type is EventType.SIGNED_OUT:
            return False
        if self._sending is not None:
            if not self._sending.done() or self._sending.cancelled():
                return False
            if self._sending.exception() is not None:  # `_events` raises it
                self._catching_up = True
                return False
            self._sending = None
        try:
            self._sending = self.out.send_text_now(self.room.event_frame(event))
        except Exception:  # the socket is going: `_events` sends again and meets the error
            self._catching_up = True
            return False
        return True

    async def _events(self, sub: Subscription) -> None:
        while True:
            events = await sub.get_all()
            self._catching_up = True
            if self._sending is not None:
                await self._sending  # sent before what queued behind it
                self._sending = None
            for event in events:
                if event.type is EventType.SIGNED_OUT and event.user == self.account.name:
                    await self._still_instructor()
                await self.out.send_text(self.room.event_frame(event))
            self._catching_up = False

    async def _still_instructor(self) -> None:
        again = await authenticate_socket(self.ws)
        if not _is_instructor(again) or again.name != self.account.name:
            raise _SignedOut()

    async def _states(self) -> None:
        seen = 0
        while True:
            seen, text = await self.room.newer_than(seen)
            await self.out.send_text(text)

    async def _until_closed(self) -> None:
        while True:
            await self.ws.receive_text()  # the dashboard sends nothing that matters
