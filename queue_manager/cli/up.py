"""The one-command local workshop (`comfy-workshop up`): a private redis-server (AOF in the data
folder), the accounts (DATA/credentials.csv), the queue manager, and GPU workers: N simulated
ones (a ComfyUI simulator + a worker agent each) or one agent for a real ComfyUI URL. What dies
is restarted (supervision.py); nothing it started outlives it (children.py); Ctrl-C or SIGTERM
stops every process it started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from uvloop import new_event_loop as new_loop

from queue_manager.api.app import create_app
from queue_manager.cli.children import Program
from queue_manager.cli.redis_server import RedisServer, RedisServerError, free_port
from queue_manager.cli.roster import ensure_roster
from queue_manager.cli.server import BeforeExit, DisconnectAtShutdown, Server
from queue_manager.cli.session_secret import SecretFileError, with_session_secret
from queue_manager.cli.supervision import Supervisor
from queue_manager.core.endpoints import EndpointConfig
from queue_manager.core.ids import UserId, WorkerId
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.accounts import AccountStore
from queue_manager.store.connection import connect
from queue_manager.store.keys import Keys
from queue_manager.store.tokens import TokenStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalOptions:
    users: int = 20
    workers: int = 1
    comfyui_url: str | None = None
    step_delay: float = 0.05  # simulated sampler speed: slow enough to watch progress
    endpoints: tuple[EndpointConfig, ...] = ()  # push endpoints added at start


def run_local(settings: Settings, options: LocalOptions | None = None) -> None:
    """Run the whole workshop until Ctrl-C / SIGTERM. A refusal to start (the data folder is in
    use, no redis-server) ends the command with one line, never a traceback."""
    try:
        _run_local(settings, options or LocalOptions())
    except (RedisServerError, SecretFileError) as exc:
        raise SystemExit(f"comfy-workshop up: {exc}") from None
    except KeyboardInterrupt:
        pass  # Ctrl-C while starting: what was started is stopped already


def _run_local(settings: Settings, options: LocalOptions) -> None:
    data = settings.data_dir.resolve()
    redis = RedisServer(data / "redis", appendonly=True, owner="comfy-workshop up")
    supervisor = Supervisor(("redis-server", redis))
    try:
        redis.start()
        log.info("started redis-server (pid %d)", redis.pid)
        local = settings.model_copy(update={"redis_url": redis.url, "data_dir": data})
        local = with_session_secret(local)
        credentials = data / "credentials.csv"
        tokens = asyncio.run(_prepare(local, options, credentials))
        for name, program in _workers(local, options, tokens):
            supervisor.launch(name, program)
        supervisor.start()
        run(local, _banner(redis, options, credentials), supervisor.retire_programs)
    finally:
        supervisor.stop()  # every child, and Redis last, even if it never started supervising
        if redis.process is not None:
            log.info("stopped the private Redis")


def _banner(redis: RedisServer, options: LocalOptions, credentials: Path) -> str:
    workers = (
        f"one worker for the ComfyUI at {options.comfyui_url}"
        if options.comfyui_url
        else f"{options.workers} simulated GPU worker(s)"
    )
    return (
        f"private Redis on {redis.url}, AOF in {redis.directory}\n"
        f"  accounts: {options.users} participants + instructor, passwords in "
        f"{credentials}\n  workers: {workers}"
    )


async def _prepare(settings: Settings, options: LocalOptions, credentials: Path) -> list[str]:
    """Accounts, and a fresh token for each local worker (their plain text lives only in the
    worker processes we start)."""
    redis = connect(str(settings.redis_url))
    try:
        keys = Keys(settings.key_prefix)
        created = await ensure_roster(AccountStore(redis, keys), credentials, options.users)
        if created:
            log.info("created %d accounts; passwords in %s", created, credentials)
        service = QueueService(settings, redis)  # its endpoint cases only: no loops started
        for config in options.endpoints:
            await service.add_endpoint(config, UserId("operator"))
            log.info("endpoint %s: %s (%d slot(s))", config.name, config.url, config.slots)
        tokens = TokenStore(redis, keys)
        names = (
            ["local-gpu"]
            if options.comfyui_url
            else [f"sim-{i}" for i in range(1, options.workers + 1)]
        )
        return [await tokens.create(WorkerId(name)) for name in names]
    finally:
        await redis.aclose()


def _workers(
    settings: Settings, options: LocalOptions, tokens: list[str]
) -> list[tuple[str, Program]]:
    """A simulator (unless a real ComfyUI is given) and an agent per token, not started yet."""
    programs: list[tuple[str, Program]] = []
    logs = settings.data_dir / "logs"
    manager = f"http://127.0.0.1:{settings.port}"
    for i, token in enumerate(tokens, start=1):
        comfyui = options.comfyui_url
        if comfyui is None:
            port = free_port()  # kept across restarts: the agent knows the simulator by it
            comfyui = f"http://127.0.0.1:{port}"
            simulator = [
                *("-m", "worker.simulator", "--port", str(port)),
                *("--data", str(settings.data_dir / "simulators" / f"sim-{i}")),
                *("--step-delay", str(options.step_delay)),
            ]
            programs.append(
                (
                    f"simulator-{i}",
                    Program([sys.executable, *simulator], {}, logs / f"simulator-{i}.log"),
                )
            )
        agent_env = {
            "CW_WORKER_MANAGER_URL": manager,
            "CW_WORKER_TOKEN": token,
            "CW_WORKER_COMFYUI_URL": comfyui,
            "CW_WORKER_WORK_DIR": str(settings.data_dir / "worker" / str(i)),
        }
        if len(tokens) == 1 and "CW_WORKER_PREFETCH" not in os.environ:
            # The room's one GPU keeps its next job waiting in ComfyUI's own queue (with more
            # GPUs a job handed early could wait behind one while another GPU is free).
            agent_env["CW_WORKER_PREFETCH"] = "1"
        agent = Program([sys.executable, "-m", "worker"], agent_env, logs / f"worker-{i}.log")
        programs.append((f"worker-{i}", agent))
    return programs


def run(settings: Settings, banner: str = "", before_exit: BeforeExit | None = None) -> None:
    """Serve until Ctrl-C / SIGTERM; refuse to listen beyond loopback with a placeholder
    secret (every command that serves comes through here). `before_exit`: see server.py."""
    if (problem := settings.listening_refusal()) is not None:
        raise SystemExit(f"comfy-workshop: {problem}")
    url = f"http://{settings.host}:{settings.port}/"
    print(f"Comfy Workshop queue manager: {url}  (health: {url}healthz)", flush=True)
    if banner:
        print(f"  {banner}", flush=True)
    print(f"  data folder: {settings.data_dir.resolve()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(_serve(settings, before_exit))


async def _serve(settings: Settings, before_exit: BeforeExit | None) -> None:
    stopping = asyncio.Event()
    config = uvicorn.Config(
        DisconnectAtShutdown(create_app(settings), stopping),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        lifespan="on",
        # Requests still running this long after shutdown began are cancelled (long polls are
        # told at once that their client is gone: server.py).
        timeout_graceful_shutdown=3,
        # Frames are small JSON; compressing each one per socket cost 89 % of a core instead
        # of 49 % for 200 dashboards in benchmarks/fanout.py (browsers always offer deflate).
        ws_per_message_deflate=False,
        # The app itself decides which proxy may name the client (CW_TRUSTED_PROXIES; login
        # throttling counts by that address): uvicorn's own rewriting would be a second rule.
        proxy_headers=False,
    )
    await Server(config, stopping, before_exit).serve()
