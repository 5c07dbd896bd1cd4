"""A held job's reports: what queued up while a request was on its way goes in one request, in
order; previews go alone and only the newest; a refusal loses the job."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from queue_manager.comfy.frames import Preview
from queue_manager.contract.worker_api import MAX_BATCH_BYTES, Assignment, ReportType
from worker.errors import JobLost, ManagerUnavailable
from worker.held import Held
from worker.manager_client import ManagerClient
from worker.reports import Reports, batches

Sent = list[tuple[ReportType, dict[str, Any]]] | str


class Manager:
    """A queue manager whose answers the test releases one at a time."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.answer: asyncio.Queue[Exception | None] = asyncio.Queue()
        self.waiting = asyncio.Event()

    async def _answered(self, sent: Sent) -> None:
        self.sent.append(sent)
        self.waiting.set()
        outcome = await self.answer.get()
        if outcome is not None:
            raise outcome

    async def report_many(
        self, job: Assignment, reports: list[tuple[ReportType, dict[str, Any]]]
    ) -> None:
        await self._answered(list(reports))

    async def preview(self, job: Assignment, image: bytes, mime: str) -> None:
        await self._answered(image.decode())


def held() -> Held:
    return Held(Assignment(id="j1", attempt=1, user="user001", lane="normal", prompt={}))


def preview(name: str) -> Preview:
    return Preview(name.encode(), "image/jpeg", {})


async def test_reports_that_queue_up_behind_a_request_go_together_in_order() -> None:
    manager, job = Manager(), held()
    reports = Reports(cast(ManagerClient, manager), job)
    try:
        reports.tell("job.started", {})
        await manager.waiting.wait()  # the first is on its way alone
        reports.tell("job.executing", {"node": "1"})
        reports.preview(preview("old"))
        reports.tell("job.executing", {"node": "2"})
        reports.preview(preview("new"))
        reports.tell("job.executed", {"node": "2", "output": {}})
        for _ in range(4):
            manager.answer.put_nowait(None)
        await asyncio.wait_for(reports.settled(), 5)
    finally:
        await reports.close()
    assert manager.sent == [
        [("job.started", {})],
        [("job.executing", {"node": "1"}), ("job.executing", {"node": "2"})],
        "new",
        [("job.executed", {"node": "2", "output": {}})],
    ]


async def test_a_lost_report_is_dropped_and_a_refused_one_loses_the_job() -> None:
    manager, job = Manager(), held()
    reports = Reports(cast(ManagerClient, manager), job, batch=1)
    try:
        manager.answer.put_nowait(ManagerUnavailable("away"))
        reports.tell("job.started", {})
        await asyncio.wait_for(reports.settled(), 5)
        assert not job.lost.is_set()
        manager.answer.put_nowait(JobLost("j1"))
        reports.tell("job.executing", {"node": "1"})
        await asyncio.wait_for(reports.settled(), 5)
        assert job.lost.is_set()
    finally:
        await reports.close()
    assert len(manager.sent) == 2


def test_batches_keep_order_and_respect_the_count_and_the_size() -> None:
    small = ("job.progress", {"value": 1})
    big = ("job.executed", {"output": {"text": ["x" * (MAX_BATCH_BYTES // 2)]}})
    items: list[Any] = [small, small, small, preview("a"), big, big, small]
    got = batches(items, most=2)
    assert got == [[small, small], [small], preview("a"), [big], [big, small]]
    assert batches([], most=2) == []
