"""`python -m worker.simulator` (or `comfy-workshop simulator`): serve the simulator with
uvicorn until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import uvicorn

from worker.simulator.runtime import SimulatorConfig
from worker.simulator.server import create_app


def run_simulator(host: str, port: int, data: Path, config: SimulatorConfig) -> None:
    app = create_app(data.resolve(), config)
    print(f"ComfyUI simulator: http://{host}:{port}/  (files in {data.resolve()})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=host, port=port, log_level="warning", ws="websockets")


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
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = SimulatorConfig(
        step_delay=args.step_delay,
        fail_class_types=frozenset(args.fail),
        large_output_bytes=args.large_output_bytes,
        front_end_root=args.front_end_root.resolve() if args.front_end_root else None,
    )
    run_simulator(args.host, args.port, args.data, config)
    return 0
