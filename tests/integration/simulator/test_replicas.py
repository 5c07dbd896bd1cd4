"""Replica lifecycles seen through the balancer: an idle replica stops and forgets, a killed
one loses its running prompt and goes cold, and the control API reports it all."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import websockets

from tests.support.graphs import SAVE, sampler
from tests.support.serverless import replicas, until_done, until_replica
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.pool import PoolOptions
from worker.simulator.runtime import SimulatorConfig


async def test_an_idle_replica_stops_and_forgets_its_history(tmp_path: Path) -> None:
    options = PoolOptions(replicas=1, idle_stop=0.3)
    async with (
        LoadBalancedSimulator(tmp_path, SimulatorConfig(), options) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        prompt_id = str(uuid.uuid4())
        await http.post("/prompt", json={"prompt": SAVE, "prompt_id": prompt_id})
        await until_done(http, 0, prompt_id)
        known = (await http.get(f"/history/{prompt_id}")).json()
        await until_replica(http, 0, state="cold")
        forgotten = (await http.get(f"/history/{prompt_id}")).json()  # a cold start again
        report = (await replicas(http))[0]

    assert prompt_id in known
    assert forgotten == {}
    assert report["cold_starts"] == 2
    assert report["prompts"] == [prompt_id]  # the report remembers every life


async def test_a_replica_with_an_open_socket_is_not_idle(tmp_path: Path) -> None:
    options = PoolOptions(replicas=2, idle_stop=0.2)
    async with (
        LoadBalancedSimulator(tmp_path, SimulatorConfig(), options) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        async with websockets.connect(sim.ws_url) as ws:  # replica 0
            await ws.recv()
            await http.get("/queue")  # replica 1, used after the socket opened
            await until_replica(http, 1, state="cold")  # idle long enough to stop...
            with_socket = (await replicas(http))[0]  # ...and so was replica 0, but for its socket
        await until_replica(http, 0, state="cold")

    assert (with_socket["state"], with_socket["open"]) == ("warm", 1)


async def test_a_killed_replica_loses_its_running_prompt_and_goes_cold(tmp_path: Path) -> None:
    config = SimulatorConfig(step_delay=0.05)
    async with (
        LoadBalancedSimulator(tmp_path, config, PoolOptions(replicas=1)) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        async with websockets.connect(f"{sim.ws_url}?clientId=k") as ws:
            await ws.recv()
            posted = await http.post("/prompt", json={"prompt": sampler(400), "client_id": "k"})
            prompt_id = posted.json()["prompt_id"]
            await _until_progress(ws)
            killed = await http.post("/_sim/replicas/0/kill")
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                closed = True
        after = (await http.get(f"/history/{prompt_id}")).json()
        report = (await replicas(http))[0]

    assert killed.json()["state"] == "cold"
    assert closed
    assert after == {}
    assert (report["cold_starts"], report["prompts"]) == (2, [prompt_id])


async def _until_progress(ws: websockets.ClientConnection) -> None:
    while True:
        raw = await asyncio.wait_for(ws.recv(), 10)
        if isinstance(raw, str) and json.loads(raw)["type"] == "progress":
            return


async def test_a_replica_started_through_the_control_api_is_warm_and_counted(
    tmp_path: Path,
) -> None:
    options = PoolOptions(replicas=2, cold_start=0.2)
    async with (
        LoadBalancedSimulator(tmp_path, SimulatorConfig(), options) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        started = await http.post("/_sim/replicas/1/start")
        report = (await http.get("/_sim/replicas")).json()
        missing = await http.post("/_sim/replicas/5/kill")

    assert started.json()["state"] == "warm"
    assert [r["state"] for r in report["replicas"]] == ["cold", "warm"]
    assert (report["cold_starts"], report["warm"]) == (1, [1])
    assert missing.status_code == 404
