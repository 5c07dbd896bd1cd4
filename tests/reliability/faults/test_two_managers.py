"""Two queue-manager processes on one Redis, a GPU worker on each, participants spread over
both (one of them with their page on A while they press Run on B): every job ends exactly
once, the claims across both managers follow the fair order the dashboard showed, and each
page hears the progress and the end of its jobs whichever manager took the Run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from queue_manager.core.events import EventType
from queue_manager.core.ids import UserId
from queue_manager.store.events import EventLog
from tests.reliability.support.invariants import (
    Accepted,
    ParticipantPage,
    RoomView,
    assert_room_consistent,
)
from tests.support.waiting import until

from ._ends import assert_told_truly
from ._pages import Participant, accepted, logged_in, open_pages
from ._stack import running_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ON_A = [UserId("user001"), UserId("user002")]
ON_B = [UserId("user003"), UserId("user004")]
CROSSED = UserId("user005")  # page on A, Runs on B
USERS = [*ON_A, *ON_B, CROSSED]
EACH = 3  # Runs per participant, all pressed while the queue is paused


async def test_two_managers_share_one_fair_queue_and_every_page_hears_its_jobs(
    tmp_path: Path,
) -> None:
    settings = {"CW_MAX_RUNNING_PER_USER": "-1"}  # fairness alone decides the order
    async with (
        running_stack(
            tmp_path, users=len(USERS), managers=2, workers_on=(0, 1), settings=settings
        ) as stack,
        stack.room() as room,
    ):
        a, b = (m.url for m in stack.managers)
        passwords = stack.passwords()
        async with (
            logged_in(passwords, ["instructor"], a) as (teacher,),
            logged_in(passwords, USERS, a) as people,
            open_pages(passwords, [*ON_A, CROSSED], a) as pages_a,
            open_pages(passwords, ON_B, b) as pages_b,
        ):
            await until(lambda: both_workers_ready(room, people[0]), 60, "both workers")
            pages = {p.user: p for p in [*pages_a, *pages_b]}
            pressing = {p.name: p if p.name in ON_A else p.on(b) for p in people}
            assert (await teacher.http.post("/admin/api/queue/pause")).status_code == 200
            for user in USERS:  # one participant after the other: FIFO would run them so
                for _ in range(EACH):
                    answer = await pressing[user].submit(pages[user].client_id)
                    assert answer.job is not None, answer
            expected = await dashboard_order(teacher.on(b))
            assert (await teacher.on(b).http.post("/admin/api/queue/resume")).status_code == 200
            jobs = accepted(people)
            await assert_room_consistent(room, jobs, list(pages.values()), set(USERS), 90)
            await assert_told_truly(room, USERS, jobs)
            claims = await claimed(room)
            assert [job for job, _ in claims] == expected, stack.logs()
            assert {worker for _, worker in claims} == {"sim-1", "sim-2"}
            assert_round_robin(claims, jobs)
            assert_heard_progress(pages[CROSSED], [j for j in jobs if j.user == CROSSED])


async def both_workers_ready(room: RoomView, person: Participant) -> bool:
    """Both agents joined and the node catalogue is known: nothing is held for a GPU."""
    if await room.redis.zcard(room.keys.workers) < 2:
        return False
    found = await person.http.get(f"/{person.name}/api/object_info")
    return found.status_code == 200 and "KSampler" in found.json()


async def dashboard_order(teacher: Participant) -> list[str]:
    """The queue's order as the dashboard shows it (positions while paused)."""
    state = await teacher.http.get("/admin/api/state")
    assert state.status_code == 200, state.text
    queue = state.json()["queue"]
    assert all(q["position"] is not None for q in queue), queue
    return [str(q["id"]) for q in sorted(queue, key=lambda q: q["position"])]


async def claimed(room: RoomView) -> list[tuple[str, str]]:
    """(job, worker) of every claim, in the order the claim script handed them out."""
    stream = EventLog(room.redis, room.keys)
    claims: list[tuple[str, str]] = []
    after = "0-0"
    while batch := await stream.read(after, count=1000):
        claims += [(str(e.job), str(e.worker)) for e in batch if e.type == EventType.JOB_CLAIMED]
        after = batch[-1].id
    return claims


def assert_round_robin(claims: Sequence[tuple[str, str]], jobs: Sequence[Accepted]) -> None:
    """Every run of len(USERS) consecutive claims serves each participant once."""
    owner = {str(a.job_id): a.user for a in jobs}
    users = [owner[job] for job, _ in claims]
    rounds = [users[i : i + len(USERS)] for i in range(0, len(users), len(USERS))]
    assert all(sorted(r) == sorted(USERS) for r in rounds), rounds


def assert_heard_progress(page: ParticipantPage, jobs: Sequence[Accepted]) -> None:
    """The page on A heard each job pressed on B run: its start and its sampler's steps."""
    for job in jobs:
        kinds = {f.type for f in page.frames if f.about(job.job_id)}
        assert {"execution_start", "progress", "execution_success"} <= kinds, (job, kinds)
