"""A ComfyUI socket opened ahead of the next job, so that a Run on an idle GPU does not wait
for one to connect (a new `/ws` and its first frame cost tens of ms before the prompt can be
posted).

Each job still gets a socket of its own, with its own `clientId`: ComfyUI sends a prompt's
messages (and its previews) to the client that posted it, so a socket per job keeps two jobs
of ours (one running, the next waiting in ComfyUI's queue) apart. While it waits, the spare
reads and drops what ComfyUI broadcasts (queue status): a socket nobody reads would fill up
and stall ComfyUI's sends to every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from worker.comfy_client import ComfyClient, EventStream
from worker.errors import ComfyUIUnavailable


@dataclass
class JobSocket:
    client_id: str
    stream: EventStream
    _exit: contextlib.AsyncExitStack

    async def close(self) -> None:
        await self._exit.aclose()


async def open_socket(comfy: ComfyClient) -> JobSocket:
    """A new socket under a fresh client id, its first status frame (the sid) read."""
    client_id = f"cw-agent-{uuid.uuid4().hex[:12]}"
    stack = contextlib.AsyncExitStack()
    try:
        stream = await stack.enter_async_context(comfy.events(client_id))
        await stream.next()
    except BaseException:
        await stack.aclose()
        raise
    return JobSocket(client_id, stream, stack)


class SpareSocket:
    """At most one socket kept open and read (its broadcasts dropped) until a job takes it."""

    def __init__(self, comfy: ComfyClient) -> None:
        self._comfy = comfy
        self._task: asyncio.Task[JobSocket] | None = None
        self._ready: JobSocket | None = None
        self._draining: asyncio.Task[None] | None = None

    def prime(self) -> None:
        """Open a spare now (the agent is ready for its first job)."""
        if self._task is None:
            self._task = asyncio.create_task(self._open(), name="spare ComfyUI socket")

    @contextlib.asynccontextmanager
    async def job_socket(self) -> AsyncIterator[JobSocket]:
        """The spare if it is open and sound, else a new socket; the next spare is opened as
        this one is taken. Closed when the job is done with it."""
        socket = await self._take()
        self.prime()
        try:
            yield socket
        finally:
            await socket.close()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is None:
                await task.result().close()
        await self._stop_draining()
        if self._ready is not None:
            ready, self._ready = self._ready, None
            await ready.close()

    async def _take(self) -> JobSocket:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()  # still connecting: a new one is as quick
            await asyncio.wait({task})
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            await self._stop_draining()
            socket, self._ready = self._ready, None
            if socket is not None and socket.stream.is_open():
                return socket
            if socket is not None:
                await socket.close()
        return await open_socket(self._comfy)

    async def _open(self) -> JobSocket:
        socket = await open_socket(self._comfy)
        self._ready = socket
        self._draining = asyncio.create_task(self._drain(socket), name="spare socket reader")
        return socket

    @staticmethod
    async def _drain(socket: JobSocket) -> None:
        with contextlib.suppress(ComfyUIUnavailable):
            while True:
                await socket.stream.next()  # nothing of ours yet: broadcasts only

    async def _stop_draining(self) -> None:
        draining, self._draining = self._draining, None
        if draining is not None:
            draining.cancel()  # websockets' recv is cancellation-safe: nothing is lost
            await asyncio.wait({draining})


@contextlib.asynccontextmanager
async def one_socket(comfy: ComfyClient) -> AsyncIterator[JobSocket]:
    """A socket for a single job (serve mode: one job per agent, nothing to open ahead)."""
    socket = await open_socket(comfy)
    try:
        yield socket
    finally:
        await socket.close()
