"""`/{user}/ws`: the participant's ComfyUI socket, fed from the shared event stream.

The socket subscribes before it reads any state, so nothing that happens while it catches up
is lost. It never makes the stream reader wait: events queue per socket (bounded); a page
that falls too far behind, or does not take a frame within `SEND_TIMEOUT`, is closed and
reconnects (the frontend does so by itself, with its `clientId`, and re-reads its queue).

Besides ComfyUI's own messages, the page's workshop extension gets `workshop.status` (true
positions, phases, the instructor's broadcast), at most every `STATUS_INTERVAL` seconds, and
the room-wide pushes (`core.events.ROOM_WIDE`: a workflow to open, an output shown to
everyone) as `{"type": <event type>, "data": <event data>}`; both only once the extension sent
`workshop.subscribe`, never to a page that did not ask.

When the user's sessions end or their password changes (`account.signed_out`, from any
process), the socket checks its own credentials again and closes with 1008 if they no longer
hold; the page's reconnect is then refused like any stranger's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from queue_manager.api.auth import authenticate_socket
from queue_manager.comfy import messages as msg
from queue_manager.comfy.messages import SocketView
from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import MalformedBody
from queue_manager.core.events import (
    FINAL,
    PHASE_CHANGES,
    QUEUE_CHANGES,
    ROOM_WIDE,
    Event,
    EventType,
)
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import JobStatus
from queue_manager.service.fanout import Overflowed, Subscription
from queue_manager.service.queue import QueueService

from ..sockets import GuardedSocket, Stalled, until_first_ends
from .access import same_origin
from .server import features

log = logging.getLogger(__name__)
router = APIRouter()

STATUS_INTERVAL = 0.5
_MAX_CLIENT_ID = 128


class _Closed(Exception):
    """The page went away or stalled."""


@router.websocket("/ws")
async def socket(websocket: WebSocket, user: str) -> None:
    account = await authenticate_socket(websocket)
    if account is None or account.name != user or not same_origin(websocket):
        await websocket.close(code=1008)  # before accept: the handshake gets 403
        return
    service: QueueService = websocket.app.state.service
    requested = websocket.query_params.get("clientId") or ""
    sid = requested if 0 < len(requested) <= _MAX_CLIENT_ID else uuid.uuid4().hex
    await websocket.accept()
    session = _Session(websocket, service, UserId(account.name), sid)
    with contextlib.suppress(_Closed, WebSocketDisconnect):
        await session.run()
    if websocket.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=session.close_code)


class _Session:
    def __init__(self, ws: WebSocket, service: QueueService, user: UserId, sid: str) -> None:
        self.ws = ws
        self.out = GuardedSocket(ws)
        self.service = service
        self.user = user
        self.view = SocketView(sid)
        self.client_ids: dict[str, str | None] = {}
        self.close_code = 1000
        self._status_due = asyncio.Event()
        self._wants_status = False

    async def run(self) -> None:
        with self.service.subscribe(self.user) as sub:
            await self._send_json(msg.status(await self._remaining(), self.view.sid))
            await self._catch_up()
            await until_first_ends(
                self._read_client(),
                self._workshop_status(),
                self._forward(sub),
                self._watch(),
                self._others_moved(),
            )

    # -- the page's frames --------------------------------------------------------------

    async def _read_client(self) -> None:
        """ComfyUI heeds only a first `feature_flags` frame; our extension may also ask for
        `workshop.status` pushes (`workshop.subscribe`). Anything else is ignored."""
        first = True
        while True:
            text = await self.ws.receive_text()
            try:
                parsed = parse_json(text.encode())
            except MalformedBody:
                parsed = None
            frame: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
            kind = frame.get("type")
            if kind == "feature_flags" and first:
                flags = frame.get("data")
                wanted = isinstance(flags, dict) and flags.get("supports_preview_metadata")
                self.view.preview_metadata = bool(wanted)
                limit = self.service.settings.max_upload_bytes
                await self._send_json({"type": "feature_flags", "data": features(limit)})
            elif kind == "workshop.subscribe":
                self._wants_status = True
                self._status_due.set()
            first = False

    # -- events -------------------------------------------------------------------------

    async def _forward(self, sub: Subscription) -> None:
        while True:
            try:
                event: Event = await sub.get()
            except Overflowed:
                log.info("socket of %s fell behind; closing it to resync", self.user)
                self.close_code = 1013  # try again later: the page reconnects and re-reads
                raise _Closed() from None
            await self._on_own_event(event)

    async def _on_own_event(self, event: Event) -> None:
        if event.type == EventType.SIGNED_OUT:
            await self._still_signed_in()
            return
        if event.type == EventType.CONTROL:
            self._status_due.set()
            return
        if event.type in ROOM_WIDE:
            # Only a page whose extension asked: the stock frontend logs unknown types.
            if self._wants_status:
                await self._send_json({"type": event.type.value, "data": event.data})
            return
        if event.job is None:
            return
        client_id = await self._client_id(event.job)
        if event.type in FINAL:
            error = event.data.get("error")
            for m in self.view.finish(event, client_id, error):
                await self._send_json(m)
            await self._send_json(msg.status(await self._remaining()))
            if self.view.mine(client_id) or event.data.get("was") == "running":
                await self._send_json(msg.done(event.job))
            self.client_ids.pop(event.job, None)
        elif event.type == EventType.JOB_PREVIEW:
            found = await self.service.job_preview(event.job)
            if found is not None:
                frame = self.view.preview(event.job, client_id, *found)
                if frame is not None:
                    await self.out.send_bytes(frame)
        else:
            for m in self.view.translate(event, client_id):
                await self._send_json(m)
            if event.type in QUEUE_CHANGES:
                await self._send_json(msg.status(await self._remaining()))
        if event.type in PHASE_CHANGES:
            self._status_due.set()

    async def _still_signed_in(self) -> None:
        account = await authenticate_socket(self.ws)
        if account is None or account.name != self.user:
            log.info("socket of %s closed: signed out", self.user)
            self.close_code = 1008  # policy: these credentials no longer hold
            raise _Closed()

    async def _catch_up(self) -> None:
        """A page that reconnects mid-run (a reload) is told where its running job is."""
        for job in await self.service.user_jobs(self.user):
            self.client_ids[job.id] = job.client_id
            if job.status is not JobStatus.RUNNING or not self.view.mine(job.client_id):
                continue
            if job.started_at is None:
                continue
            started = Event("", EventType.JOB_STARTED, job.started_at, job.id, self.user)
            for m in self.view.translate(started, job.client_id):
                await self._send_json(m)
            if job.node:
                executing = Event(
                    "",
                    EventType.JOB_EXECUTING,
                    job.started_at,
                    job.id,
                    self.user,
                    data={"node": job.node},
                )
                for m in self.view.translate(executing, job.client_id):
                    await self._send_json(m)
            if job.progress is not None:
                progress = Event(
                    "",
                    EventType.JOB_PROGRESS,
                    job.started_at,
                    job.id,
                    self.user,
                    data=job.progress.model_dump(),
                )
                for m in self.view.translate(progress, job.client_id):
                    await self._send_json(m)

    async def _others_moved(self) -> None:
        """Other users' jobs move this user's positions: refresh the status when they do."""
        while True:
            await self.service.queue_moved()
            self._status_due.set()

    async def _workshop_status(self) -> None:
        while True:
            await self._status_due.wait()
            self._status_due.clear()
            if not self._wants_status:
                continue
            status = await self.service.workshop_status(self.user, time.time())
            await self._send_json({"type": "workshop.status", "data": status})
            await asyncio.sleep(STATUS_INTERVAL)

    # -- helpers ------------------------------------------------------------------------

    async def _client_id(self, job_id: JobId) -> str | None:
        if job_id not in self.client_ids:
            self.client_ids[job_id] = await self.service.job_client_id(job_id)
        return self.client_ids[job_id]

    async def _remaining(self) -> int:
        return await self.service.queue_remaining(self.user)

    async def _send_json(self, message: dict[str, Any]) -> None:
        await self.out.send_json(message)

    async def _watch(self) -> None:
        try:
            await self.out.watch()
        except Stalled:
            log.info("socket of %s stalled; closing it", self.user)
            self.close_code = 1013
            raise _Closed() from None
