"""`comfy-workshop simulator`: serve the simulator with uvicorn until Ctrl-C."""

from __future__ import annotations

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
