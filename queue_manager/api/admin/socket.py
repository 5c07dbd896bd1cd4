"""`/admin/ws`: the dashboard's live feed.

Every event goes out as it comes (progress and previews coalesced for a slow socket by its
subscription), and the whole room state follows whenever something changed: built and encoded
once per process for every dashboard (`room_feed.RoomFeed`). A dashboard that stalls is
closed, never waited for; it reconnects and the first state resyncs it. Prompts and
workflows are never sent: events carry none.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from queue_manager.core.accounts import Role
from queue_manager.service.fanout import Overflowed, Subscription
from queue_manager.service.queue import QueueService
from queue_manager.service.room_feed import RoomFeed

from ..auth import authenticate
from ..participant.access import same_origin
from ..sockets import GuardedSocket, Stalled, until_first_ends

log = logging.getLogger(__name__)
router = APIRouter()


@router.websocket("/ws")
async def admin_socket(websocket: WebSocket) -> None:
    account = await authenticate(websocket)
    if account is None or account.role is not Role.INSTRUCTOR or not same_origin(websocket):
        await websocket.close(code=1008)  # before accept: the handshake gets 403
        return
    await websocket.accept()
    service: QueueService = websocket.app.state.service
    room: RoomFeed = websocket.app.state.room_feed
    feed = _Feed(websocket, service, room)
    with contextlib.suppress(Stalled, Overflowed, WebSocketDisconnect):
        await feed.run()
    if websocket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=1013)


class _Feed:
    def __init__(self, ws: WebSocket, service: QueueService, room: RoomFeed) -> None:
        self.ws = ws
        self.out = GuardedSocket(ws)
        self.service = service
        self.room = room

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
