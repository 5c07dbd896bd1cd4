"""`comfy-workshop endpoint add|list|remove`: the operator's side of push endpoints (live: a
running queue manager sees the change at once, it reads them from Redis)."""

from __future__ import annotations

import argparse
import asyncio
import json

from queue_manager.core.endpoints import endpoint
from queue_manager.core.errors import EndpointInvalid
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from queue_manager.store.endpoints import EndpointStore
from queue_manager.store.keys import Keys


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


def run_endpoint_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args))


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    redis = connect(str(settings.redis_url), retries=1)
    store = EndpointStore(redis, Keys(settings.key_prefix))
    try:
        if args.action == "list":
            for config in await store.all():
                print(json.dumps(config.shown()))
            return 0
        if not args.name:
            print(f"endpoint {args.action}: an endpoint name is required")
            return 2
        if args.action == "remove":
            removed = await store.remove(args.name)
            print(f"removed {args.name}" if removed else f"no endpoint {args.name}")
            return 0 if removed else 1
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
        )
        new = await store.put(config)
        print(f"{'added' if new else 'replaced'} {json.dumps(config.shown())}")
        return 0
    except EndpointInvalid as exc:
        print(f"endpoint {args.action}: {exc}")
        return 2
    finally:
        await redis.aclose()
