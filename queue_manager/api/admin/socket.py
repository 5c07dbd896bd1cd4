"""`/admin/ws`: the dashboard's live feed.

Every event goes out as it comes (progress and previews coalesced for a slow socket by its
subscription), and the whole room state follows whenever something changed: built and encoded
once per process for every dashboard (`room_feed.RoomFeed`). A dashboard that stalls is
closed, never waited for; it reconnects and the first state resyncs it. Prompts and
workflows are never sent: events carry none.

When the instructor's own sessions end or their password or role changes
(`account.signed_out`), the socket checks its credentials again and closes with 1008 if they
no longer make an instructor.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TypeGuard

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from queue_manager.core.accounts import Account, Role
from queue_manager.core.events import EventType
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

    async def run(self) -> None:
        with self.service.subscribe(None) as sub:
            self.room.changed()
            await until_first_ends(
                self._events(sub),
                self._states(),
                self._until_closed(),
                self.out.watch(),
            )

    async def _events(self, sub: Subscription) -> None:
        while True:
            event = await sub.get()
            if event.type is EventType.SIGNED_OUT and event.user == self.account.name:
                again = await authenticate_socket(self.ws)
                if not _is_instructor(again) or again.name != self.account.name:
                    raise _SignedOut()
            await self.out.send_text(self.room.event_frame(event))
            self.room.changed()

    async def _states(self) -> None:
        seen = 0
        while True:
            seen, text = await self.room.newer_than(seen)
            await self.out.send_text(text)

    async def _until_closed(self) -> None:
        while True:
            await self.ws.receive_text()  # the dashboard sends nothing that matters
