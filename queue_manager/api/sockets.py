"""Sending on a WebSocket without letting one stuck client hold anything up.

Sends are not wrapped in a timeout each (at 20,000 frames/s that overhead alone cost ~17 % of
a core in `benchmarks/fanout.py`); instead a watchdog per socket looks at the oldest send in
flight and declares the client `Stalled` once it has waited longer than `SEND_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Coroutine
from typing import Any

from fastapi import WebSocket

SEND_TIMEOUT = 10.0


class Stalled(Exception):
    """The client did not take a frame within the send timeout: close it."""


async def until_first_ends(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run a socket's loops side by side until one of them ends (the client left, a send
    stalled, ...); re-raise what ended it and cancel the others."""
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if (exc := task.exception()) is not None:
                raise exc
    finally:
        await _cancel_all(tasks)


# How long a socket's loop may take to end once cancelled before it is told again: a
# cancellation that lands inside a redis-py call on Python 3.11 can be swallowed (its
# `wait_for`), which would leave the loop running and the socket's subscription held.
_CANCEL_AGAIN = 0.5
_CANCEL_TRIES = 20


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    pending = set(tasks)
    for _ in range(_CANCEL_TRIES):
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_CANCEL_AGAIN)
        if not pending:
            break
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an ending loop's error is not "never retrieved"


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class GuardedSocket:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._inflight: dict[int, float] = {}
        self._ids = itertools.count()

    async def send_text(self, text: str) -> None:
        token = next(self._ids)
        self._inflight[token] = time.monotonic()
        try:
            await self.ws.send_text(text)
        finally:
            del self._inflight[token]

    async def send_bytes(self, data: bytes) -> None:
        token = next(self._ids)
        self._inflight[token] = time.monotonic()
        try:
            await self.ws.send_bytes(data)
        finally:
            del self._inflight[token]

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send_text(encode(message))

    async def watch(self) -> None:
        """Run beside the sending tasks; raises Stalled when a send waits too long."""
        while True:
            limit = SEND_TIMEOUT
            await asyncio.sleep(min(1.0, limit / 4))
            if self._inflight and time.monotonic() - min(self._inflight.values()) > limit:
                raise Stalled()
