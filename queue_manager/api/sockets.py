"""Sending on a WebSocket without letting one stuck client hold anything up.

Sends are not wrapped in a timeout each (at 20,000 frames/s that overhead alone cost ~17 % of
a core in `benchmarks/fanout.py`); instead a watchdog per socket looks at the oldest send in
flight and declares the client `Stalled` once it has waited longer than `SEND_TIMEOUT`.
`send_now` runs a send on the spot, for the fan-out that writes one frame to many sockets.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import time
from collections.abc import Coroutine, Generator
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


def send_now(send: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run `send` here and now until it first waits (Python 3.12's eager task start, which
    3.11 lacks): None when it finished without waiting, as a send to a peer that reads always
    does (the server writes to the transport); else the task that finishes it. Errors raised
    before it waits are raised here.

    Why: a dashboard event sent from its socket's own task cost a task wake-up per socket per
    event, about as much as the send itself (benchmarks/fanout.py)."""
    try:
        waiting_on = send.send(None)
    except StopIteration:
        return None
    except BaseException:
        send.close()
        raise
    task = asyncio.ensure_future(_Resumed(send, waiting_on))
    task.add_done_callback(_retrieved)  # whoever awaits it still gets its error
    return task


def _retrieved(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class _Resumed:
    """Awaitable: a coroutine already started by hand, continued from the future it waits on
    (yielded on to the task that awaits this, so the task waits on it in its place)."""

    def __init__(self, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self._coro, self._waiting_on = coro, waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting_on = self._coro, self._waiting_on
        while True:
            try:
                value = yield waiting_on
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation: the send gets it where it waits
                step = functools.partial(coro.throw, exc)
            else:
                step = functools.partial(coro.send, value)
            try:
                waiting_on = step()
            except StopIteration:
                return


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

    def send_text_now(self, text: str) -> asyncio.Task[None] | None:
        """`send_text`, run at once (`send_now`): None once written, else the task that
        finishes it, watched like any send in flight. Starts below `send_text`, since at
        thousands of frames a second its layers are a visible share of the cost."""
        task = send_now(self.ws.send({"type": "websocket.send", "text": text}))
        if task is not None:
            token = next(self._ids)
            self._inflight[token] = time.monotonic()
            task.add_done_callback(lambda _: self._inflight.pop(token))
        return task

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send_text(encode(message))

    async def watch(self) -> None:
        """Run beside the sending tasks; raises Stalled when a send waits too long."""
        while True:
            limit = SEND_TIMEOUT
            await asyncio.sleep(min(1.0, limit / 4))
            if self._inflight and time.monotonic() - min(self._inflight.values()) > limit:
                raise Stalled()
