"""The one-command local workshop (`comfy-workshop up`): a private redis-server (AOF in the data
folder), the accounts (DATA/credentials.csv), the queue manager, and GPU workers: N simulated
ones (a ComfyUI simulator + a worker agent each) or one agent for a real ComfyUI URL. Ctrl-C or
SIGTERM stops every process it started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer, free_port
from queue_manager.cli.roster import ensure_roster
from queue_manager.cli.session_secret import SecretFileError, with_session_secret
from queue_manager.core.ids import WorkerId
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


def run_local(settings: Settings, options: LocalOptions | None = None) -> None:
    try:
        _run_local(settings, options or LocalOptions())
    except SecretFileError as exc:
        raise SystemExit(f"comfy-workshop up: {exc}") from None


def _run_local(settings: Settings, options: LocalOptions) -> None:
    data = settings.data_dir.resolve()
    redis = RedisServer(data / "redis", appendonly=True)
    redis.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        local = settings.model_copy(update={"redis_url": redis.url, "data_dir": data})
        local = with_session_secret(local)
        credentials = data / "credentials.csv"
        tokens = asyncio.run(_prepare(local, options, credentials))
        procs = _start_workers(local, options, tokens)
        workers = (
            f"one worker for the ComfyUI at {options.comfyui_url}"
            if options.comfyui_url
            else f"{options.workers} simulated GPU worker(s)"
        )
        run(
            local,
            banner=(
                f"private Redis on {redis.url}, AOF in {data / 'redis'}\n"
                f"  accounts: {options.users} participants + instructor, passwords in "
                f"{credentials}\n  workers: {workers}"
            ),
        )
    finally:
        _stop(procs)
        redis.stop()
        log.info("stopped the private Redis")


async def _prepare(settings: Settings, options: LocalOptions, credentials: Path) -> list[str]:
    """Accounts, and a fresh token for each local worker (their plain text lives only in the
    worker processes we start)."""
    redis = connect(str(settings.redis_url))
    try:
        keys = Keys(settings.key_prefix)
        created = await ensure_roster(AccountStore(redis, keys), credentials, options.users)
        if created:
            log.info("created %d accounts; passwords in %s", created, credentials)
        tokens = TokenStore(redis, keys)
        names = (
            ["local-gpu"]
            if options.comfyui_url
            else [f"sim-{i}" for i in range(1, options.workers + 1)]
        )
        return [await tokens.create(WorkerId(name)) for name in names]
    finally:
        await redis.aclose()


def _start_workers(
    settings: Settings, options: LocalOptions, tokens: list[str]
) -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    manager = f"http://127.0.0.1:{settings.port}"
    for i, token in enumerate(tokens, start=1):
        comfyui = options.comfyui_url
        if comfyui is None:
            port = free_port()
            comfyui = f"http://127.0.0.1:{port}"
            procs.append(
                _spawn(
                    [
                        sys.executable,
                        "-m",
                        "queue_manager",
                        "simulator",
                        "--port",
                        str(port),
                        "--data",
                        str(settings.data_dir / "simulators" / f"sim-{i}"),
                        "--step-delay",
                        str(options.step_delay),
                    ],
                    {},
                    logs / f"simulator-{i}.log",
                )
            )
        procs.append(
            _spawn(
                [sys.executable, "-m", "worker"],
                {
                    "CW_WORKER_MANAGER_URL": manager,
                    "CW_WORKER_TOKEN": token,
                    "CW_WORKER_COMFYUI_URL": comfyui,
                    "CW_WORKER_WORK_DIR": str(settings.data_dir / "worker" / str(i)),
                },
                logs / f"worker-{i}.log",
            )
        )
    return procs


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:
        # Own session: the terminal's Ctrl-C reaches us; we stop them in order.
        return subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # agents drain: the job in hand finishes
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(settings: Settings, banner: str = "") -> None:
    """Serve until Ctrl-C / SIGTERM; refuse to listen beyond loopback with a placeholder
    secret (every command that serves comes through here)."""
    if (problem := settings.listening_refusal()) is not None:
        raise SystemExit(f"comfy-workshop: {problem}")
    url = f"http://{settings.host}:{settings.port}/"
    print(f"Comfy Workshop queue manager: {url}  (health: {url}healthz)", flush=True)
    if banner:
        print(f"  {banner}", flush=True)
    print(f"  data folder: {settings.data_dir.resolve()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        lifespan="on",
        # Workers' long polls would otherwise hold a shutdown for their whole wait; a claim cut
        # short hands back anything it was given.
        timeout_graceful_shutdown=3,
        # Frames are small JSON; compressing each one per socket cost 89 % of a core instead
        # of 49 % for 200 dashboards in benchmarks/fanout.py (browsers always offer deflate).
        ws_per_message_deflate=False,
    )
    await uvicorn.Server(config).serve()
