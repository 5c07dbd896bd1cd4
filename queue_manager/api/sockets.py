"""Sending on a WebSocket without letting one stuck client hold anything up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

from fastapi import WebSocket

SEND_TIMEOUT = 10.0


class Stalled(Exception):
    """The client did not take a frame within the send timeout: close it."""


async def send_within(sending: Awaitable[None], timeout: float | None = None) -> None:
    """Await a send; a client that takes longer than `timeout` (default SEND_TIMEOUT) to make
    room for it is `Stalled`."""
    try:
        await asyncio.wait_for(sending, SEND_TIMEOUT if timeout is None else timeout)
    except TimeoutError as exc:
        raise Stalled() from exc


async def send_json(ws: WebSocket, message: dict[str, Any]) -> None:
    await send_within(ws.send_text(json.dumps(message, separators=(",", ":"))))
