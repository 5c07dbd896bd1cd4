"""`comfy-workshop endpoint add|list|remove`: the operator's side of push endpoints (live: a
running queue manager sees the change at once, it reads them from Redis)."""

from __future__ import annotations

import argparse
import asyncio
import json

from queue_manager.cli.target import add_data_option, workshop_settings
from queue_manager.core.endpoints import endpoint
from queue_manager.core.errors import EndpointInvalid, EndpointNotFound
from queue_manager.core.ids import UserId
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect

# Who the log lines name for a change made from the command line.
OPERATOR = UserId("operator")


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("endpoint", help="add, list or remove push endpoints (GPUs we call)")
    p.add_argument("action", choices=["add", "list", "remove"])
    p.add_argument("name", nargs="?", help="the endpoint's name (lowercase, digits, - and _)")
    p.add_argument("url", nargs="?", help="for add: its base URL")
    p.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    p.add_argument("--slots", type=int, default=1, help="jobs kept on it at once")
    p.add_argument("--kind", choices=["comfyui", "runpod", "agent"], default="comfyui")
    p.add_argument("--outputs", default="view", help="view, or the shared output folder")
    p.add_argument("--inputs", default="upload", help="upload, or the shared input folder")
    p.add_argument("--cold-start-timeout", type=float, default=300.0, metavar="S")
    p.add_argument("--job-timeout", type=float, default=1800.0, metavar="S")
    p.add_argument(
        "--prefetch", type=int, default=0, metavar="N",
        help="kind comfyui, one machine: jobs kept waiting in its own queue (0 or 1)",
    )  # fmt: skip
    add_data_option(p)


def run_endpoint_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(workshop_settings(settings), args))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    redis = connect(str(settings.redis_url), retries=1)
    service = QueueService(settings, redis)  # its endpoint cases only: no loops started
    try:
        if args.action == "list":
            for config in await service.endpoints():
                print(json.dumps(config.shown()))
            return 0
        if not args.name:
            print(f"endpoint {args.action}: an endpoint name is required")
            return 2
        if args.action == "remove":
            try:
                await service.remove_endpoint(args.name, OPERATOR)
            except EndpointNotFound:
                print(f"no endpoint {args.name} (see: comfy-workshop endpoint list)")
                return 1
            print(f"removed {args.name}; its running jobs went back to the queue")
            return 0
        if not args.url:
            print("endpoint add: NAME URL, e.g. endpoint add gpu1 https://gpu.example/")
            return 2
        config = endpoint(
            args.name,
            args.url,
            kind=args.kind,
            slots=args.slots,
            headers=tuple(args.header),
            outputs=args.outputs,
            inputs=args.inputs,
            cold_start_timeout=args.cold_start_timeout,
            job_timeout=args.job_timeout,
            prefetch=args.prefetch,
        )
        known = {c.name for c in await service.endpoints()}
        await service.add_endpoint(config, OPERATOR)
        print(f"{'replaced' if config.name in known else 'added'} {json.dumps(config.shown())}")
        return 0
    except EndpointInvalid as exc:
        print(f"endpoint {args.action}: {exc}")
        return 2
    finally:
        await redis.aclose()
