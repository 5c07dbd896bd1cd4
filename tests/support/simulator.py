"""A ComfyUI simulator served by a real uvicorn on a free loopback port, inside the test's loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import serve
from worker.simulator.runtime import SimulatorConfig
from worker.simulator.server import Simulator, create_app


@dataclass
class RunningSimulator:
    url: str
    ws_url: str
    base: Path
    sim: Simulator


@contextlib.asynccontextmanager
async def serve_simulator(
    base: Path, config: SimulatorConfig | None = None, port: int | None = None
) -> AsyncIterator[RunningSimulator]:
    app = create_app(base, config or SimulatorConfig())
    async with serve(app, port) as url:
        ws_url = url.replace("http", "ws", 1) + "/ws"
        yield RunningSimulator(url, ws_url, base, app.state.simulator)
