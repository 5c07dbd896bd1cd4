"""A serverless simulator stops with nothing left behind, whatever it was doing: sockets
bridged, polls hanging, prompts and jobs running or waiting for a cold start."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import websockets

from tests.support.graphs import sampler
from tests.support.serverless import until_replica
from tests.support.waiting import until
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.faults import Faults, ReplicaFaults
from worker.simulator.pool import PoolOptions
from worker.simulator.runpod.api import RunPodOptions
from worker.simulator.runtime import SimulatorConfig

SLOW = SimulatorConfig(step_delay=0.05)


def _others(before: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - before - {asyncio.current_task()}  # type: ignore[operator]


async def test_a_busy_balancer_stops_with_no_task_left(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    faults = Faults(replicas={1: ReplicaFaults(history="hang")})
    sim = LoadBalancedSimulator(tmp_path, SLOW, PoolOptions(replicas=2), faults=faults)
    async with (
        sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
        websockets.connect(f"{sim.ws_url}?clientId=c") as ws,  # replica 0
    ):
        await ws.recv()
        hung = asyncio.create_task(http.get("/history"))  # replica 1, never answered
        await until_replica(http, 1, open=1)
        await http.post("/prompt", json={"prompt": sampler(400), "client_id": "c"})  # 0
        await until_replica(http, 0, queue_remaining=1)
        await sim.stop()
        assert (await hung).status_code == 503
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:  # the frames sent before the close, then the close
                pass
        assert ws.close_code == 1012  # the replica went away: "service restart"
    await until(lambda: not _others(before), timeout=5, what="every task ended")


async def test_a_busy_runpod_endpoint_stops_with_no_task_left(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    options = PoolOptions(replicas=2, cold_start=0.2)
    sim = LoadBalancedSimulator(tmp_path, SLOW, options, runpod=RunPodOptions("k"))
    auth = {"Authorization": "Bearer k"}
    async with sim, httpx.AsyncClient(base_url=sim.url, headers=auth, timeout=10) as api:
        await api.post("/_sim/replicas/0/start")
        for _ in range(3):  # one runs on replica 0, one waits for 1 to start, one is queued
            await api.post("/run", json={"input": {"workflow": sampler(400)}})
        await until_replica(api, 0, queue_remaining=1)
        await sim.stop()
    await until(lambda: not _others(before), timeout=5, what="every task ended")
