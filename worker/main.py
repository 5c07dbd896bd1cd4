"""`comfy-workshop worker` / `python -m worker`: run the agent until SIGTERM (drain) or Ctrl-C.

With `--serve PORT` (or CW_WORKER_SERVE_PORT) it claims nothing: it serves jobs the queue
manager pushes to it, as the entry point of a serverless image (`worker.serve`, imported only
then: the pull agent loads no web framework).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import uvloop
from pydantic import ValidationError

from worker.agent import Agent
from worker.comfy_client import ComfyClient
from worker.manager_client import ManagerClient
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


async def run_agent(settings: WorkerSettings) -> None:
    manager = ManagerClient(settings)
    comfy = ComfyClient(str(settings.comfyui_url), settings.request_timeout_seconds)
    agent = Agent(settings, manager, comfy)
    loop = asyncio.get_running_loop()
    running = asyncio.current_task()
    assert running is not None

    def stop_now() -> None:
        log.info("stopping now: the current job goes back to the queue")
        running.cancel()

    def on_sigterm() -> None:
        if agent.draining.is_set():
            stop_now()
        else:
            agent.drain()

    # SIGTERM drains (finish the job, claim no more); a second one, or SIGINT, stops now.
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, stop_now)
    try:
        await agent.run()
    finally:
        await manager.aclose()
        await comfy.aclose()
        log.info("worker agent stopped")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="comfy-workshop worker",
        description="A GPU worker agent next to a ComfyUI (settings: CW_WORKER_* variables).",
    )
    p.add_argument(
        "--serve",
        type=int,
        metavar="PORT",
        help="take jobs the queue manager pushes to this port (an endpoint of kind agent; "
        "the entry point of a serverless image) instead of claiming them",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = WorkerSettings()  # required values come from the environment
    except ValidationError as exc:
        print(f"comfy-workshop worker: bad settings:\n{exc}", file=sys.stderr)
        return 2
    port = args.serve or settings.serve_port
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            if port:
                from worker.serve import serve_pushed_jobs  # starlette, uvicorn: serve mode only

                runner.run(serve_pushed_jobs(settings, port))
            else:
                runner.run(run_agent(settings))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130
    return 0
