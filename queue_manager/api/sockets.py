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
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps every send in a task.
        async with asyncio.timeout(SEND_TIMEOUT if timeout is None else timeout):
            await sending
    except TimeoutError as exc:
        raise Stalled() from exc


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


async def send_json(ws: WebSocket, message: dict[str, Any]) -> None:
    await send_within(ws.send_text(encode(message)))
