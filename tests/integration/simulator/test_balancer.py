"""The serverless simulator's balancer over real HTTP and WebSockets: round-robin routing (a
history poll lands on a replica that never saw the prompt), sockets bridged frame by frame,
cold starts held or refused, and the shared input and output mounts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.graphs import SAVE, sampler, simple_prompt
from tests.support.serverless import (
    load_and_save,
    png,
    replicas,
    until_done,
    until_replica,
)
from tests.support.waiting import until
from worker.simulator.balancer import BalancerOptions
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.pool import PoolOptions
from worker.simulator.runtime import SimulatorConfig


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[LoadBalancedSimulator]:
    """Two replicas, warm from the start (no cold start)."""
    async with LoadBalancedSimulator(tmp_path, SimulatorConfig(), PoolOptions(replicas=2)) as sim:
        yield sim


@pytest.fixture
async def http(two: LoadBalancedSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=two.url, timeout=10) as client:
        yield client


async def test_requests_go_round_robin_so_history_mostly_lands_on_a_replica_that_never_saw_it(
    http: httpx.AsyncClient,
) -> None:
    prompt_id = str(uuid.uuid4())
    posted = await http.post("/prompt", json={"prompt": SAVE, "prompt_id": prompt_id})
    assert posted.status_code == 200, posted.text
    await until_done(http, 0, prompt_id)

    # The prompt went to replica 0; the polls go to 1, 0, 1, 0.
    answers = [(await http.get(f"/history/{prompt_id}")).json() for _ in range(4)]

    assert [prompt_id in a for a in answers] == [False, True, False, True]
    assert answers[0] == answers[2] == {}
    assert [r["prompts"] for r in await replicas(http)] == [[prompt_id], []]


async def test_every_route_is_passed_on_with_the_replicas_answer(http: httpx.AsyncClient) -> None:
    stats = await http.get("/system_stats")
    missing = await http.get("/no/such/route")

    assert stats.status_code == 200
    assert stats.json()["system"]["comfyui_version"] == "0.25.0"
    assert stats.headers["content-type"] == "application/json; charset=utf-8"
    assert missing.status_code == 404


async def test_a_socket_is_bridged_both_ways_with_progress_and_preview_frames(
    two: LoadBalancedSimulator, http: httpx.AsyncClient
) -> None:
    async with websockets.connect(f"{two.ws_url}?clientId=lb-client") as ws:  # replica 0
        hello = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "feature_flags", "data": {}}))
        flags = json.loads(await ws.recv())
        await http.get("/queue")  # replica 1: the prompt below lands on replica 0 again
        posted = await http.post("/prompt", json={"prompt": sampler(3), "client_id": "lb-client"})
        prompt_id = posted.json()["prompt_id"]
        frames = await _frames_until_done(ws, prompt_id)

    assert hello["data"]["sid"] == "lb-client"
    assert flags["type"] == "feature_flags"
    kinds = [f if isinstance(f, str) else f["type"] for f in frames]
    assert "progress" in kinds
    assert "binary" in kinds  # the sampler's previews
    assert (await replicas(http))[0]["prompts"] == [prompt_id]


async def _frames_until_done(
    ws: websockets.ClientConnection, prompt_id: str
) -> list[dict[str, Any] | str]:
    frames: list[dict[str, Any] | str] = []
    while True:
        raw = await asyncio.wait_for(ws.recv(), 20)
        frame: dict[str, Any] | str = "binary" if isinstance(raw, bytes) else json.loads(raw)
        frames.append(frame)
        if frame == {"type": "executing", "data": {"node": None, "prompt_id": prompt_id}}:
            return frames


async def test_a_request_for_a_cold_replica_is_held_until_it_has_started(tmp_path: Path) -> None:
    options = PoolOptions(replicas=1, cold_start=0.3)
    async with (
        LoadBalancedSimulator(tmp_path, SimulatorConfig(), options) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        assert (await replicas(http))[0]["state"] == "cold"
        held = asyncio.create_task(http.get("/queue"))
        await until_replica(http, 0, state="starting")
        answer = await held
        report = (await replicas(http))[0]

    assert answer.status_code == 200
    assert answer.json() == {"queue_running": [], "queue_pending": []}
    assert (report["state"], report["cold_starts"]) == ("warm", 1)


async def test_a_held_request_gives_up_with_504_when_the_start_takes_too_long(
    tmp_path: Path,
) -> None:
    options = PoolOptions(replicas=1, cold_start=60)
    async with (
        LoadBalancedSimulator(
            tmp_path, SimulatorConfig(), options, balancer=BalancerOptions("hold", hold_timeout=0.2)
        ) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        answer = await http.get("/queue")
        report = (await replicas(http))[0]

    assert answer.status_code == 504
    assert report["state"] == "starting"  # the replica goes on starting


async def test_a_cold_replica_refuses_while_it_starts_when_told_to(tmp_path: Path) -> None:
    options = PoolOptions(replicas=1, cold_start=0.3)
    async with (
        LoadBalancedSimulator(tmp_path, None, options, balancer=BalancerOptions("refuse")) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        refused = await http.get("/queue")
        await until_replica(http, 0, state="warm", cold_starts=1)
        served = await http.get("/queue")

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert served.status_code == 200


async def test_a_socket_to_a_starting_replica_is_refused_when_told_to(tmp_path: Path) -> None:
    options = PoolOptions(replicas=1, cold_start=60)
    async with LoadBalancedSimulator(
        tmp_path, SimulatorConfig(), options, balancer=BalancerOptions("refuse")
    ) as sim:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(sim.ws_url)

    assert refused.value.response.status_code == 503


@pytest.mark.parametrize(("shared", "status"), [(True, 200), (False, 400)])
async def test_an_upload_to_one_replica_is_loadable_on_another_only_with_shared_inputs(
    tmp_path: Path, shared: bool, status: int
) -> None:
    inputs = tmp_path / "mount" / "input"
    options = PoolOptions(replicas=2, shared_inputs=inputs if shared else None)
    async with (
        LoadBalancedSimulator(tmp_path / "sim", SimulatorConfig(), options) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        files = {"image": ("lb-in.png", png(), "image/png")}
        uploaded = await http.post("/upload/image", files=files)  # replica 0
        posted = await http.post("/prompt", json={"prompt": load_and_save("lb-in.png")})  # 1

    assert uploaded.status_code == 200
    assert posted.status_code == status, posted.text
    assert (inputs / "lb-in.png").is_file() == shared


async def test_every_replica_writes_its_outputs_to_the_shared_output_folder(tmp_path: Path) -> None:
    outputs = tmp_path / "mount" / "output"
    options = PoolOptions(replicas=2, shared_outputs=outputs)
    async with (
        LoadBalancedSimulator(tmp_path / "sim", SimulatorConfig(), options) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        for prefix in ("one/a", "two/b"):  # replica 0, then replica 1
            answer = await http.post("/prompt", json={"prompt": simple_prompt(prefix)})
            assert answer.status_code == 200
        await until(
            lambda: {p.parent.name for p in outputs.rglob("*.png")} == {"one", "two"},
            what="both replicas' pictures in the shared folder",
        )
        report = await replicas(http)

    assert all(len(r["prompts"]) == 1 for r in report)
    assert not (tmp_path / "sim" / "replica-0" / "output").exists()
