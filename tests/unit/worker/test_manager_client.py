"""The agent's client of the worker API, against a stand-in transport: what a batch of reports
becomes on the wire, and how it copes with a report it cannot send or an older queue manager."""

from __future__ import annotations

import json
import math

import httpx

from queue_manager.contract.worker_api import Assignment
from worker.manager_client import ManagerClient
from worker.settings import WorkerSettings

JOB = Assignment(id="j1", attempt=1, user="user001", lane="normal", prompt={})


def client(handler: httpx.MockTransport) -> ManagerClient:
    settings = WorkerSettings(manager_url="http://qm", token="cwt.gpu1.secret")  # type: ignore[arg-type]
    manager = ManagerClient(settings)
    manager._http = httpx.AsyncClient(base_url="http://qm/worker/v1", transport=handler)
    return manager


async def test_reports_go_in_one_request_without_one_the_queue_could_not_keep() -> None:
    seen: list[tuple[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(204)

    manager = client(httpx.MockTransport(answer))
    await manager.report_many(
        JOB,
        [
            ("job.started", {}),
            ("job.executed", {"node": "9", "output": {"value": [math.nan]}}),
            ("job.executing", {"node": "9"}),
        ],
    )
    assert seen == [
        (
            "/worker/v1/jobs/j1/events/batch",
            {
                "attempt": 1,
                "reports": [
                    {"type": "job.started", "data": {}},
                    {"type": "job.executing", "data": {"node": "9"}},
                ],
            },
        )
    ]


async def test_a_queue_manager_without_the_batch_route_gets_them_one_by_one() -> None:
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(404 if request.url.path.endswith("/batch") else 204)

    manager = client(httpx.MockTransport(answer))
    reports = [("job.started", {}), ("job.executing", {"node": "1"})]
    await manager.report_many(JOB, reports)  # type: ignore[arg-type]
    await manager.report_many(JOB, reports)  # type: ignore[arg-type]
    events = "/worker/v1/jobs/j1/events"
    assert paths == [f"{events}/batch", events, events, events, events]
