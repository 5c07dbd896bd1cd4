"""The balancer's injected faults, set at construction and through `/_sim/faults` mid-run: a
prompt accepted whose answer is lost, a replica whose `/history` knows nothing or never
answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.graphs import SAVE
from tests.support.serverless import replicas, until_done, until_replica
from worker.simulator.cluster import LoadBalancedSimulator
from worker.simulator.faults import Faults, ReplicaFaults
from worker.simulator.pool import PoolOptions
from worker.simulator.runtime import SimulatorConfig


@pytest.fixture
async def one(tmp_path: Path) -> AsyncIterator[LoadBalancedSimulator]:
    async with LoadBalancedSimulator(tmp_path, SimulatorConfig(), PoolOptions(replicas=1)) as sim:
        yield sim


@pytest.fixture
async def http(one: LoadBalancedSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=one.url, timeout=10) as client:
        yield client


def _prompt() -> tuple[str, dict[str, object]]:
    prompt_id = str(uuid.uuid4())
    return prompt_id, {"prompt": SAVE, "prompt_id": prompt_id}


async def test_a_dropped_prompt_answer_closes_the_connection_after_the_replica_accepted(
    http: httpx.AsyncClient,
) -> None:
    armed = await http.post("/_sim/faults", json={"drop_prompt_responses": 1})
    lost_id, lost = _prompt()
    with pytest.raises(httpx.TransportError):
        await http.post("/prompt", json=lost)
    kept_id, kept = _prompt()
    answered = await http.post("/prompt", json=kept)

    assert armed.json()["drop_prompt_responses"] == 1
    assert answered.status_code == 200  # one drop only
    await until_done(http, 0, kept_id)
    assert (await replicas(http))[0]["prompts"] == [lost_id, kept_id]
    assert (await http.get("/_sim/faults")).json()["drop_prompt_responses"] == 0


async def test_a_refused_prompt_does_not_use_up_a_drop(http: httpx.AsyncClient) -> None:
    await http.post("/_sim/faults", json={"drop_prompt_responses": 1})
    refused = await http.post("/prompt", json={"prompt": {"1": {"class_type": "Nope"}}})

    assert refused.status_code == 400
    assert (await http.get("/_sim/faults")).json()["drop_prompt_responses"] == 1


async def test_a_drop_set_for_one_replica_spares_the_others(tmp_path: Path) -> None:
    faults = Faults(replicas={1: ReplicaFaults(drop_prompt_responses=1)})
    async with (
        LoadBalancedSimulator(tmp_path, None, PoolOptions(replicas=2), faults=faults) as sim,
        httpx.AsyncClient(base_url=sim.url, timeout=10) as http,
    ):
        first = await http.post("/prompt", json=_prompt()[1])  # replica 0
        with pytest.raises(httpx.TransportError):
            await http.post("/prompt", json=_prompt()[1])  # replica 1
        third = await http.post("/prompt", json=_prompt()[1])  # replica 0

    assert (first.status_code, third.status_code) == (200, 200)


async def test_a_history_fault_of_empty_hides_what_the_replica_knows_until_cleared(
    http: httpx.AsyncClient,
) -> None:
    prompt_id, body = _prompt()
    await http.post("/prompt", json=body)
    await until_done(http, 0, prompt_id)
    await http.post("/_sim/faults", json={"replicas": {"0": {"history": "empty"}}})
    hidden = [(await http.get(path)).json() for path in (f"/history/{prompt_id}", "/history")]
    cleared = await http.delete("/_sim/faults")
    shown = (await http.get(f"/history/{prompt_id}")).json()

    assert hidden == [{}, {}]
    assert cleared.json() == {"drop_prompt_responses": 0, "replicas": {}}
    assert prompt_id in shown


async def test_a_history_fault_of_hang_holds_the_poll_until_the_balancer_stops(
    one: LoadBalancedSimulator, http: httpx.AsyncClient
) -> None:
    await http.post("/_sim/faults", json={"replicas": {"0": {"history": "hang"}}})
    poll = asyncio.create_task(http.get("/api/history/anything"))
    await until_replica(http, 0, open=1)  # the poll reached the replica and is held there
    beside = await http.get("/queue")  # the replica answers everything else meanwhile
    still_waiting = not poll.done()
    await one.stop()
    answer = await poll

    assert beside.status_code == 200
    assert still_waiting
    assert answer.status_code == 503


@pytest.mark.parametrize(
    "body",
    [
        {"replicas": {"1": {"history": "hang"}}},  # there is one replica: 0
        {"replicas": {"0": {"history": "sometimes"}}},
        {"drop_prompt_responses": -1},
        {"surprise": True},
    ],
)
async def test_a_fault_the_balancer_cannot_apply_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, body: dict[str, object]
) -> None:
    answer = await http.post("/_sim/faults", json=body)

    assert answer.status_code == 400
    assert (await http.get("/_sim/faults")).json() == {"drop_prompt_responses": 0, "replicas": {}}
