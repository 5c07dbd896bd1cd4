"""The load balancer in front of simulator replicas, as serverless ComfyUI is reached: every
request and every `/ws` goes to the next replica round-robin, so a `/history/{id}` poll usually
lands on a replica that never saw the prompt and answers `{}`. A request that reaches a cold
replica starts it and is held until it is warm (`hold`, 504 after `hold_timeout`) or refused
with 503 and Retry-After (`refuse`). Faults (`worker.simulator.faults`) are applied here;
`/_sim/...` is the control API (`worker.simulator.control`)."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Literal

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from worker.simulator import proxy
from worker.simulator.control import Control
from worker.simulator.faults import Faults
from worker.simulator.pool import ReplicaPool
from worker.simulator.replica import Replica, ReplicaState, ReplicaStopped

log = logging.getLogger(__name__)

ColdBehaviour = Literal["hold", "refuse"]
CONNECT_TIMEOUT = 5.0
_PROMPT_PATHS = frozenset({"/prompt", "/api/prompt"})
_HISTORY_PATHS = frozenset({"/history", "/api/history"})


@dataclass(frozen=True)
class BalancerOptions:
    cold_behaviour: ColdBehaviour = "hold"  # a request for a starting replica waits, or 503
    hold_timeout: float = 30.0  # seconds a held request waits for its replica, then 504
    read_timeout: float = 60.0  # seconds a replica may take over one answer, then 502

    def __post_init__(self) -> None:
        if self.cold_behaviour not in ("hold", "refuse"):
            raise ValueError("the cold behaviour is hold or refuse")
        if self.hold_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("the hold and read timeouts must be more than 0 seconds")


@dataclass(frozen=True)
class Refusal:
    status: int
    error: str
    retry_after: int | None = None


class Balancer:
    """The ASGI app on the public port. `close()` before the server stops: held and hanging
    requests are answered, new ones refused."""

    def __init__(self, pool: ReplicaPool, faults: Faults, options: BalancerOptions) -> None:
        self.pool = pool
        self.faults = faults
        self.options = options
        self.control = Starlette(routes=Control(pool, faults).routes())
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(options.read_timeout, connect=CONNECT_TIMEOUT)
        )
        self.closing = asyncio.Event()

    async def close(self) -> None:
        self.closing.set()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope["path"].startswith("/_sim/"):
            await self.control(scope, receive, send)
        elif self.closing.is_set():
            await _refuse_any(scope, receive, send, Refusal(503, "the balancer is stopping"))
        elif scope["type"] == "websocket":
            await self._socket(WebSocket(scope, receive, send))
        else:
            await self._http(scope, receive, send)

    # -- one request --------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await proxy.read_body(receive)
        replica = self.pool.next()
        async with replica.in_use():
            refusal = await self._warm(replica)
            if refusal is not None:
                await _refuse(send, refusal)
            elif _is_history_read(scope) and self.faults.history_on(replica.index) != "answer":
                await self._history_fault(replica, send, receive)
            else:
                await self._pass_on(replica, scope, body, send, receive)

    async def _pass_on(
        self, replica: Replica, scope: Scope, body: bytes, send: Send, receive: Receive
    ) -> None:
        url = replica.url
        if url is None:  # killed since it was found warm
            await _refuse(send, Refusal(502, f"replica {replica.index} went away"))
            return
        try:
            answer = await proxy.open_answer(self.client, url, scope, body)
        except proxy.ReplicaUnreachable as exc:
            await _refuse(send, Refusal(502, f"replica {replica.index} unreachable: {exc}"))
            return
        try:
            accepted = _is_prompt_post(scope) and answer.status_code == 200
            if accepted and self.faults.take_prompt_drop(replica.index):
                log.info("replica %d accepted a prompt; its answer is dropped", replica.index)
                await proxy.drop_connection(send, receive)
                return
            await proxy.relay(answer, send, receive)
        finally:
            await answer.aclose()

    async def _history_fault(self, replica: Replica, send: Send, receive: Receive) -> None:
        if self.faults.history_on(replica.index) == "empty":
            await proxy.answer_json(send, 200, {})
            return
        # "hang": no answer until the client gives up or the balancer stops.
        waits = {
            asyncio.create_task(proxy.wait_for_disconnect(receive)),
            asyncio.create_task(self.closing.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.wait(waits)
        if self.closing.is_set():
            await _refuse(send, Refusal(503, "the balancer is stopping"))

    # -- one socket ---------------------------------------------------------------------

    async def _socket(self, socket: WebSocket) -> None:
        replica = self.pool.next()
        async with replica.in_use():
            refusal = await self._warm(replica)
            url = replica.url
            if refusal is None and url is not None:
                await proxy.bridge(socket, proxy.upstream_url(url, socket.scope, "ws"))
                return
            refusal = refusal or Refusal(502, f"replica {replica.index} went away")
            await proxy.deny(socket, refusal.status, refusal.error)

    # -- cold starts --------------------------------------------------------------------

    async def _warm(self, replica: Replica) -> Refusal | None:
        """None once `replica` is warm; why the request cannot wait for it otherwise."""
        if replica.state is ReplicaState.WARM:
            return None
        if self.options.cold_behaviour == "refuse":
            replica.begin_start()
            wait = max(1, math.ceil(replica.cold_start))
            return Refusal(503, f"replica {replica.index} is cold-starting", wait)
        try:
            async with asyncio.timeout(self.options.hold_timeout):
                await replica.ready()
        except TimeoutError:
            return Refusal(504, f"replica {replica.index} not warm in {self.options.hold_timeout}s")
        except ReplicaStopped as exc:
            return Refusal(502, str(exc))
        return None


def _is_prompt_post(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"] in _PROMPT_PATHS


def _is_history_read(scope: Scope) -> bool:
    path: str = scope["path"]
    reads = path in _HISTORY_PATHS or path.startswith(("/history/", "/api/history/"))
    return scope["method"] == "GET" and reads


async def _refuse(send: Send, refusal: Refusal) -> None:
    headers = {} if refusal.retry_after is None else {"Retry-After": str(refusal.retry_after)}
    await proxy.answer_json(send, refusal.status, {"error": refusal.error}, headers)


async def _refuse_any(scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
    if scope["type"] == "websocket":
        await proxy.deny(WebSocket(scope, receive, send), refusal.status, refusal.error)
    else:
        await _refuse(send, refusal)
