"""`python -m worker.simulator` (or `comfy-workshop simulator`): serve the simulator with
uvicorn until Ctrl-C. With `--replicas N` (or `--api runpod`) it is a serverless endpoint
instead: N replicas with cold starts and idle stops behind a round-robin balancer, or behind a
RunPod worker-comfyui job API (`worker.simulator.cluster`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TypeVar

import uvicorn

from worker.simulator.balancer import BalancerOptions
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.pool import PoolOptions
from worker.simulator.runpod.api import RunPodOptions
from worker.simulator.runtime import SimulatorConfig
from worker.simulator.server import create_app

_T = TypeVar("_T")
# Flags that only mean something for a balanced simulator.
_BALANCED_ONLY = (
    "cold_start",
    "idle_stop",
    "cold_behaviour",
    "hold_timeout",
    "api_key",
    "result_ttl",
)


def run_simulator(host: str, port: int, data: Path, config: SimulatorConfig) -> None:
    app = create_app(data.resolve(), config)
    print(f"ComfyUI simulator: http://{host}:{port}/  (files in {data.resolve()})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, log_level="warning", ws="websockets")


async def run_balanced(simulator: LoadBalancedSimulator) -> None:
    """Serve until SIGINT or SIGTERM, then stop everything."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with simulator:
        replicas = len(simulator.pool.replicas)
        print(f"Serverless ComfyUI simulator: {simulator.url}/  ({replicas} replicas)", flush=True)
        await stop.wait()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="comfy-workshop simulator",
        description="A ComfyUI stand-in that speaks ComfyUI's protocol and runs core nodes "
        "cheaply on the CPU (no GPU needed).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8189)
    p.add_argument("--data", type=Path, default=Path("data/simulator"))
    p.add_argument("--step-delay", type=float, default=0.05, help="seconds per sampler step")
    p.add_argument("--fail", action="append", default=[], help="node type that fails")
    p.add_argument("--large-output-bytes", type=int, default=0)
    p.add_argument(
        "--front-end-root", type=Path, help="serve this ComfyUI frontend folder at / (as ComfyUI)"
    )
    p.add_argument("--shared-inputs", type=Path, help="the input folder (of every replica)")
    p.add_argument("--shared-outputs", type=Path, help="the output folder (of every replica)")
    _serverless_arguments(p.add_argument_group("serverless (with --replicas or --api runpod)"))
    return p


def _serverless_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--replicas", type=int, help="replicas behind a round-robin balancer")
    g.add_argument("--cold-start", type=float, help="seconds a cold replica takes to start")
    g.add_argument("--idle-stop", type=float, help="seconds idle before a replica stops")
    g.add_argument(
        "--cold-behaviour",
        choices=["hold", "refuse"],
        help="a request for a starting replica waits (hold, the default) or gets 503",
    )
    g.add_argument("--hold-timeout", type=float, help="seconds a held request waits, then 504")
    g.add_argument(
        "--api",
        choices=["comfyui", "runpod"],
        default="comfyui",
        help="what the port speaks: ComfyUI's protocol, or RunPod's job API",
    )
    g.add_argument("--api-key", help="the key RunPod's API wants (Authorization: Bearer KEY)")
    g.add_argument("--result-ttl", type=float, help="seconds a RunPod /run result is kept")


def balanced(args: argparse.Namespace) -> LoadBalancedSimulator:
    """The serverless simulator the flags describe (ValueError: they do not fit together)."""
    pool = PoolOptions(
        replicas=_given(args.replicas, 1),
        cold_start=_given(args.cold_start, 0.0),
        idle_stop=args.idle_stop,
        shared_inputs=_resolved(args.shared_inputs),
        shared_outputs=_resolved(args.shared_outputs),
    )
    balancer = BalancerOptions(args.cold_behaviour or "hold", _given(args.hold_timeout, 30.0))
    runpod = None
    if args.api == "runpod":
        runpod = RunPodOptions(args.api_key or "", _given(args.result_ttl, 1800.0))
    elif args.api_key is not None or args.result_ttl is not None:
        raise ValueError("--api-key and --result-ttl are for --api runpod")
    data = args.data.resolve()
    return LoadBalancedSimulator(
        data, _config(args), pool, balancer=balancer, runpod=runpod, host=args.host, port=args.port
    )


def _config(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        step_delay=args.step_delay,
        fail_class_types=frozenset(args.fail),
        large_output_bytes=args.large_output_bytes,
        front_end_root=args.front_end_root.resolve() if args.front_end_root else None,
        input_directory=_resolved(args.shared_inputs),
        output_directory=_resolved(args.shared_outputs),
    )


def _given(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _resolved(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.replicas is None and args.api == "comfyui":
        given = [f"--{n.replace('_', '-')}" for n in _BALANCED_ONLY if getattr(args, n) is not None]
        if given:
            p.error(f"{', '.join(given)} need --replicas N (or --api runpod)")
        run_simulator(args.host, args.port, args.data, _config(args))
        return 0
    try:
        simulator = balanced(args)
    except ValueError as exc:
        p.error(str(exc))
    asyncio.run(run_balanced(simulator))
    return 0
