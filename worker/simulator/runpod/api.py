"""RunPod's serverless job API for a worker-comfyui endpoint, at the root of the stand-in's URL
(what `https://api.runpod.ai/v2/{endpoint_id}` is to a real one). Every route wants
`Authorization: Bearer <key>` (RunPod also takes the bare key); others get 401.

    POST /run       {"input": {"workflow": {...}, "images"?: [{"name", "image"}]},
                     "policy"?: {"executionTimeout": ms}}   -> {"id", "status": "IN_QUEUE"}
    POST /runsync   the same; waits up to ?wait=ms (default 90 s) -> the /status body
    GET  /status/{id}  -> {"id", "status", "delayTime"?, "executionTime"?, "workerId"?,
                           "output"?: {"images": [{"filename", "type": "base64", "data"}],
                                       "errors"?: [...]}, "error"?: "..."}   (404 once expired)
    POST /cancel/{id}  -> {"id", "status"}
    POST /purge-queue  -> {"removed": n, "status": "completed"}
    GET  /health       -> {"jobs": {"completed", "failed", "inProgress", "inQueue", "retried"},
                           "workers": {"idle", "initializing", "ready", "running", ...}}

The control API (`/_sim/...`, no key) is served beside it."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from worker.simulator.control import Control
from worker.simulator.faults import Faults
from worker.simulator.pool import ReplicaPool
from worker.simulator.runpod.dispatch import Dispatcher

RUN_LIMIT = 10 * 1024 * 1024  # RunPod's request size limits
RUNSYNC_LIMIT = 20 * 1024 * 1024
_WAIT_MS = (1000, 300_000)  # the range RunPod allows for /runsync?wait=


@dataclass(frozen=True)
class RunPodOptions:
    api_key: str = field(repr=False)
    result_ttl: float = 1800.0  # seconds a /run result is kept (RunPod: 30 minutes)
    sync_result_ttl: float = 60.0  # seconds a /runsync result is kept (RunPod: 1 minute)
    sync_wait: float = 90.0  # seconds /runsync waits without ?wait=

    def __post_init__(self) -> None:
        if not self.api_key.strip():
            raise ValueError("the RunPod stand-in needs an API key")


class _BadRequest(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class RunPodApi:
    """The ASGI app on the public port."""

    def __init__(self, pool: ReplicaPool, faults: Faults, options: RunPodOptions) -> None:
        self.options = options
        self.dispatcher = Dispatcher(pool)
        self.closing = False
        routes = [
            Route("/run", self.run, methods=["POST"]),
            Route("/runsync", self.runsync, methods=["POST"]),
            Route("/status/{job_id}", self.status, methods=["GET", "POST"]),
            Route("/cancel/{job_id}", self.cancel, methods=["POST"]),
            Route("/purge-queue", self.purge_queue, methods=["POST"]),
            Route("/health", self.health, methods=["GET"]),
            *Control(pool, faults).routes(),
        ]
        self.app = Starlette(routes=routes, lifespan=self._lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = scope["type"] == "http" and not scope["path"].startswith("/_sim/")
        if guarded and not self._authorized(Headers(scope=scope).get("authorization", "")):
            await JSONResponse({"error": "Unauthorized"}, 401)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, header: str) -> bool:
        scheme, _, credentials = header.strip().partition(" ")
        given = credentials if scheme.lower() == "bearer" else header.strip()
        return hmac.compare_digest(given.encode(), self.options.api_key.encode())

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.create_task(self.dispatcher.run(), name="runpod-dispatcher")
        try:
            yield
        finally:
            loop.cancel()  # and the jobs it started, with it
            await asyncio.wait({loop})

    async def close(self) -> None:
        self.closing = True

    async def aclose(self) -> None:
        """Nothing: the dispatcher's loop closes its client as the lifespan ends."""

    # -- routes ---------------------------------------------------------------------------

    async def run(self, request: Request) -> Response:
        return await self._submit(request, RUN_LIMIT, self.options.result_ttl, sync=False)

    async def runsync(self, request: Request) -> Response:
        return await self._submit(request, RUNSYNC_LIMIT, self.options.sync_result_ttl, sync=True)

    async def status(self, request: Request) -> Response:
        job = self.dispatcher.find(request.path_params["job_id"])
        return _gone() if job is None else JSONResponse(job.status_json())

    async def cancel(self, request: Request) -> Response:
        job = self.dispatcher.find(request.path_params["job_id"])
        if job is None:
            return _gone()
        self.dispatcher.cancel(job)
        return JSONResponse({"id": job.id, "status": job.status.value})

    async def purge_queue(self, request: Request) -> Response:
        removed = self.dispatcher.purge_queue()
        return JSONResponse({"removed": removed, "status": "completed"})

    async def health(self, request: Request) -> Response:
        jobs = self.dispatcher.book.counts()
        return JSONResponse({"jobs": jobs, "workers": self.dispatcher.workers()})

    async def _submit(self, request: Request, limit: int, ttl: float, sync: bool) -> Response:
        if self.closing:
            return JSONResponse({"error": "the endpoint is stopping"}, 503)
        try:
            body = await _body(request, limit)
            timeout = _execution_timeout(body)
            wait = _sync_wait(request, self.options.sync_wait)
        except _BadRequest as exc:
            return JSONResponse({"error": exc.error}, exc.status)
        job = self.dispatcher.submit(body["input"], ttl, timeout)
        if not sync:
            return JSONResponse({"id": job.id, "status": job.status.value})
        await self.dispatcher.wait(job, wait)
        return JSONResponse(job.status_json())


async def _body(request: Request, limit: int) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > limit:
        raise _BadRequest(413, f"request larger than {limit} bytes")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _BadRequest(400, "the body is not JSON") from exc
    if not isinstance(body, dict) or "input" not in body:
        raise _BadRequest(400, "the body needs an 'input' object")
    return body


def _execution_timeout(body: dict[str, Any]) -> float | None:
    policy = body.get("policy") or {}
    ms = policy.get("executionTimeout") if isinstance(policy, dict) else None
    if ms is None:
        return None
    if not isinstance(ms, int | float) or ms <= 0:
        raise _BadRequest(400, "policy.executionTimeout must be a positive number of ms")
    return float(ms) / 1000


def _sync_wait(request: Request, default: float) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return default
    try:
        ms = int(raw)
    except ValueError as exc:
        raise _BadRequest(400, "wait must be a number of milliseconds") from exc
    low, high = _WAIT_MS
    return min(max(ms, low), high) / 1000


def _gone() -> Response:
    return JSONResponse({"error": "request does not exist"}, 404)
