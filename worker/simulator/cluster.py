"""A serverless ComfyUI simulator as one object: N replicas (`worker.simulator.pool`) behind
either the round-robin balancer that speaks ComfyUI's protocol (`worker.simulator.balancer`)
or a RunPod worker-comfyui job API (`worker.simulator.runpod`), served on one port, inside
the running event loop, and stopped with nothing left behind:

    async with LoadBalancedSimulator(data, config, PoolOptions(replicas=3, cold_start=0.3)) as sim:
        sim.url, sim.ws_url, sim.pool.report(), sim.faults.of(0).history = "hang", await sim.kill(1)

Both fronts serve the control API (`worker.simulator.control`) under `/_sim/`."""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from worker.simulator.balancer import Balancer, BalancerOptions
from worker.simulator.faults import Faults
from worker.simulator.pool import PoolOptions, ReplicaPool
from worker.simulator.runpod.api import RunPodApi, RunPodOptions
from worker.simulator.runtime import SimulatorConfig
from worker.simulator.serving import ServedApp

log = logging.getLogger(__name__)


class LoadBalancedSimulator:
    def __init__(
        self,
        data: Path,
        config: SimulatorConfig | None = None,
        pool: PoolOptions | None = None,
        *,
        balancer: BalancerOptions | None = None,
        faults: Faults | None = None,
        runpod: RunPodOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """`runpod`: serve RunPod's job API instead of ComfyUI's; `port` 0: one chosen free."""
        self.pool = ReplicaPool(data, config or SimulatorConfig(), pool or PoolOptions())
        self.faults = faults or Faults()
        self.front: Balancer | RunPodApi
        if runpod is None:
            self.front = Balancer(self.pool, self.faults, balancer or BalancerOptions())
        else:
            self.front = RunPodApi(self.pool, self.faults, runpod)
        self.host = host
        self.port = port
        self._served: ServedApp | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        assert self._served is not None, "not started"
        return self._served.url

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws"

    async def start(self) -> None:
        await self.pool.start()
        try:
            self._served = await ServedApp.start(self.front, self.host, self.port)
        except BaseException:
            await self.pool.stop()
            raise
        log.info("balanced simulator on %s: %d replicas", self.url, len(self.pool.replicas))

    async def stop(self) -> None:
        """New requests are refused, held ones answered, replicas stopped, then the port.
        Stopping twice is stopping once."""
        if self._stopped:
            return
        self._stopped = True
        await self.front.close()
        await self.pool.stop()
        if self._served is not None:
            await self._served.stop()
        await self.front.aclose()

    async def kill(self, index: int) -> None:
        """Replica `index` stops now: its running prompt is lost, it is cold again."""
        await self.pool[index].stop("killed")

    def report(self) -> dict[str, Any]:
        return self.pool.report()

    async def __aenter__(self) -> LoadBalancedSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()
