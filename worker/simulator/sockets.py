"""The simulator's WebSocket clients: sids, negotiated feature flags, and sending to one or all."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from queue_manager.comfy.frames import preview_frame

SERVER_FEATURES: dict[str, Any] = {
    "supports_preview_metadata": True,
    "max_upload_size": 104857600,
    "extension": {"manager": {"supports_v4": True}},
    "node_replacements": True,
    "assets": False,
}


@dataclass
class Client:
    sid: str
    socket: WebSocket
    features: dict[str, Any] = field(default_factory=dict)
    negotiated: bool = False  # only the first text frame may carry feature flags


class Sockets:
    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        # The node each client's prompt is executing (ComfyUI's `last_node_id`), for clients
        # that reconnect mid-run.
        self.executing: dict[str, str] = {}

    def connect(self, socket: WebSocket, client_id: str | None) -> Client:
        """Register a socket; a reconnect with the same clientId replaces the old one."""
        sid = client_id or uuid.uuid4().hex
        client = Client(sid, socket)
        self.clients[sid] = client
        return client

    def disconnect(self, client: Client) -> None:
        if self.clients.get(client.sid) is client:
            del self.clients[client.sid]

    async def send_json(self, type_: str, data: dict[str, Any], to: str | None) -> None:
        if type_ == "executing" and to is not None:
            node = data.get("display_node", data.get("node"))
            if node is None:
                self.executing.pop(to, None)
            else:
                self.executing[to] = str(node)
        message = {"type": type_, "data": data}
        for client in self._targets(to):
            await _send(client, text=message)

    async def send_binary(self, payload: bytes, to: str | None) -> None:
        for client in self._targets(to):
            await _send(client, binary=payload)

    async def send_preview(
        self, image: bytes, fmt: str, meta: dict[str, Any], to: str | None
    ) -> None:
        for client in self._targets(to):
            with_meta = bool(client.features.get("supports_preview_metadata"))
            await _send(client, binary=preview_frame(image, fmt, meta if with_meta else None))

    def _targets(self, to: str | None) -> list[Client]:
        if to is None:
            return list(self.clients.values())
        client = self.clients.get(to)
        return [client] if client else []  # not connected: dropped, as ComfyUI does


async def _send(client: Client, *, text: Any = None, binary: bytes | None = None) -> None:
    # A socket that went away is cleaned up by its own receive loop; never fail a run over it.
    with contextlib.suppress(Exception):
        if binary is not None:
            await client.socket.send_bytes(binary)
        else:
            await client.socket.send_json(text)
