"""Serve mode (`comfy-workshop worker --serve PORT`): the agent as the entry point of a
serverless image, next to its ComfyUI. The queue manager pushes jobs to it (endpoint kind
`agent`; the API is `contract.agent_api`), and each runs exactly as a claimed job would,
reported over the worker API with the lease token that came with it. Nothing is claimed or
registered, and nothing has to poll the replica.

One job at a time: a container has one ComfyUI. SIGTERM drains (pushes are refused with 503,
the job finishes, then the server stops); a second SIGTERM, or SIGINT, stops now and hands the
job back to the queue.

Only worker.main imports this module, and only in serve mode: the pull agent loads no web
framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from queue_manager.contract.agent_api import JOBS, PushedJob, PushedJobState
from worker.agent import Agent
from worker.comfy_client import ComfyClient
from worker.errors import ComfyUIUnavailable
from worker.manager_client import Assignment, ManagerClient
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)

_MAX_BODY = 64 * 2**20  # a push holds one prompt, which the queue manager caps at a few MB
_HEALTH_SECONDS = 5.0  # a health check or a push answers within this whatever ComfyUI does
_REMEMBERED = 32  # finished jobs `GET /jobs/{id}` still knows


@dataclass
class _Pushed:
    job: Assignment
    agent: Agent
    task: asyncio.Task[None]


class Serving:
    """One serving agent: its ComfyUI, the job it runs, whether it drains."""

    def __init__(self, settings: WorkerSettings, comfy: ComfyClient) -> None:
        self.settings = settings
        self.comfy = comfy
        self.current: _Pushed | None = None
        self.draining = False
        self.stopped = asyncio.Event()
        self._finished: deque[tuple[str, int]] = deque(maxlen=_REMEMBERED)
        self._stopping: set[asyncio.Task[None]] = set()

    def authorized(self, request: Request) -> bool:
        """The caller knows our worker token (the endpoint's `Authorization` header)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = self.settings.token.get_secret_value().encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)

    async def comfy_up(self) -> bool:
        try:
            async with asyncio.timeout(_HEALTH_SECONDS):
                await self.comfy.system_stats()
        except (ComfyUIUnavailable, TimeoutError):
            return False
        return True

    def has(self, job: Assignment) -> bool:
        current = self.current
        return current is not None and (current.job.id, current.job.attempt) == (
            job.id,
            job.attempt,
        )

    def take(self, pushed: PushedJob) -> bool:
        """Start running the pushed job; False while another one runs."""
        if self.current is not None:
            return False
        job = pushed.assignment
        manager = ManagerClient(self.settings, token=pushed.token)
        agent = Agent(self.settings, manager, self.comfy)
        task = asyncio.create_task(self._run(agent, manager, job), name=f"job {job.id}")
        self.current = _Pushed(job, agent, task)
        log.info("took job=%s user=%s attempt=%d", job.id, job.user, job.attempt)
        return True

    async def _run(self, agent: Agent, manager: ManagerClient, job: Assignment) -> None:
        try:
            await agent.run_pushed(job)
        except Exception:  # one job's surprise must not stop the server
            log.exception("job=%s failed in the serving agent", job.id)
        finally:
            await manager.aclose()
            self._finished.append((job.id, job.attempt))
            self.current = None
            if self.draining:
                self.stopped.set()

    def state(self, job_id: str) -> PushedJobState | None:
        current = self.current
        if current is not None and current.job.id == job_id:
            return PushedJobState(id=job_id, attempt=current.job.attempt, state="running")
        attempts = [attempt for done, attempt in self._finished if done == job_id]
        if attempts:
            return PushedJobState(id=job_id, attempt=attempts[-1], state="finished")
        return None

    async def cancel(self, job_id: str) -> bool:
        """Stop the job here, reporting nothing more: the queue manager took it away."""
        current = self.current
        if current is None or not current.agent.lose(job_id):
            return False
        log.info("job=%s taken away by the queue manager: interrupting it", job_id)
        await self.comfy.interrupt(job_id)
        return True

    def drain(self) -> None:
        log.info("draining: no more pushes; stopping once the current job is done")
        self.draining = True
        if self.current is None:
            self.stopped.set()

    def stop_now(self) -> None:
        """The current job goes back to the queue (`Agent._give_back`), then we stop."""
        log.info("stopping now: the current job goes back to the queue")
        task = asyncio.create_task(self._stop_now())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop_now(self) -> None:
        self.draining = True
        current = self.current
        if current is not None:
            current.task.cancel()
            await asyncio.wait({current.task})
        self.stopped.set()


def create_app(serving: Serving) -> Starlette:
    async def push(request: Request) -> Response:
        if not serving.authorized(request):
            return _refused()
        try:
            pushed = PushedJob.model_validate_json(await _body(request))
        except ValidationError as exc:
            return _error(400, "bad_push", f"not a pushed job: {exc.error_count()} errors")
        except _TooLarge:
            return _error(413, "too_large", f"a push is at most {_MAX_BODY} bytes")
        job = pushed.assignment
        if serving.has(job):  # pushed again after a lost answer: already ours
            return _taken(job)
        if serving.draining:
            return _error(503, "draining", "this agent is stopping")
        if serving.current is not None:
            return _error(409, "busy", f"running job {serving.current.job.id}")
        if not await serving.comfy_up():
            return _error(503, "starting", "the local ComfyUI does not answer yet")
        if not serving.take(pushed):  # another push won the race while ComfyUI was asked
            return _error(409, "busy", "running another job")
        return _taken(job)

    async def job_state(request: Request) -> Response:
        if not serving.authorized(request):
            return _refused()
        state = serving.state(request.path_params["job_id"])
        if state is None:
            return _error(404, "not_here", "no such job on this agent")
        return JSONResponse(state.model_dump())

    async def cancel(request: Request) -> Response:
        if not serving.authorized(request):
            return _refused()
        stopped = await serving.cancel(request.path_params["job_id"])
        return JSONResponse({"stopped": stopped})

    async def object_info(request: Request) -> Response:
        if not serving.authorized(request):
            return _refused()
        try:
            return JSONResponse(await serving.comfy.object_info())
        except ComfyUIUnavailable as exc:
            return _error(503, "starting", f"the local ComfyUI: {exc}")

    async def healthz(request: Request) -> Response:
        # Open to a load balancer's health check; a caller that shows a token (the queue
        # manager asking whether a failing endpoint is back) learns whether it is ours, so a
        # wrong token never reads as "ready".
        if "authorization" in request.headers and not serving.authorized(request):
            return _refused()
        up = await serving.comfy_up()
        body = {"comfyui": up, "busy": serving.current is not None, "draining": serving.draining}
        return JSONResponse(body, status_code=200 if up and not serving.draining else 503)

    return Starlette(
        routes=[
            Route(JOBS, push, methods=["POST"]),
            Route(JOBS + "/{job_id}", job_state, methods=["GET"]),
            Route(JOBS + "/{job_id}/cancel", cancel, methods=["POST"]),
            # ComfyUI's own path too: the queue manager learns an endpoint's catalogue there.
            Route("/api/object_info", object_info, methods=["GET"]),
            Route("/object_info", object_info, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise _TooLarge
    return bytes(body)


def _taken(job: Assignment) -> Response:
    return JSONResponse({"id": job.id, "attempt": job.attempt}, status_code=202)


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def _refused() -> Response:
    body = {"error": {"type": "unauthorized", "message": "the agent's worker token is required"}}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: ours drain first, then stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_pushed_jobs(settings: WorkerSettings, port: int) -> None:
    """Serve until drained (SIGTERM) or stopped (a second SIGTERM, SIGINT)."""
    comfy = ComfyClient(str(settings.comfyui_url), settings.request_timeout_seconds)
    serving = Serving(settings, comfy)
    config = uvicorn.Config(
        create_app(serving),
        host=settings.serve_host,
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        if serving.draining:
            serving.stop_now()
        else:
            serving.drain()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, serving.stop_now)
    serving_http = asyncio.create_task(server.serve(), name="serve")
    stopped = asyncio.create_task(serving.stopped.wait())
    log.info("serving pushed jobs on %s:%d (ComfyUI at %s)", settings.serve_host, port,
             settings.comfyui_url)  # fmt: skip
    try:
        await asyncio.wait({serving_http, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        server.should_exit = True
        await asyncio.wait({serving_http})
        await comfy.aclose()
    serving_http.result()  # a server that could not start (the port taken) says why
