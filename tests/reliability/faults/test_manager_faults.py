"""The queue manager SIGKILLed mid-burst and started again on the same port: every accepted
job ends exactly once, the agents find it again by themselves, and each participant's page
reconnects with its own clientId and learns every job's end without a reload."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import cast

import pytest

from queue_manager.core.ids import UserId
from tests.reliability.support.invariants import (
    Accepted,
    ParticipantPage,
    RoomView,
    assert_room_consistent,
)
from tests.support.waiting import until

from ._ends import assert_told_truly
from ._pages import Participant, accepted, logged_in, open_pages
from ._stack import running_stack, under_way

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

USERS = [UserId(f"user{i:03d}") for i in range(1, 5)]
BEFORE = 4  # jobs each participant sends before the kill


async def test_a_sigkilled_queue_manager_loses_nothing_and_everyone_reconnects(
    tmp_path: Path,
) -> None:
    async with (
        running_stack(tmp_path, users=len(USERS), workers_on=(0, 0)) as stack,
        stack.room() as room,
    ):
        manager = stack.managers[0]
        passwords = stack.passwords()
        async with (
            logged_in(passwords, USERS, manager.url) as people,
            open_pages(passwords, USERS, manager.url) as pages,
        ):
            pairs = list(zip(people, pages, strict=True))
            await asyncio.gather(*(send(p, page, BEFORE) for p, page in pairs))
            await until(lambda: under_way(room, accepted(people)), 60, "jobs running and queued")
            manager.kill()
            restarted = time.time()
            await manager.start()
            after = [await send(p, page, 1) for p, page in pairs]  # to the new process
            jobs = accepted(people)
            await assert_room_consistent(room, jobs, pages, set(USERS), timeout=90)
            await assert_told_truly(room, USERS, jobs)
            await until(lambda: agents_back(room, restarted), 30, "both agents to come back")
            for page, sent in zip(pages, after, strict=True):
                told = page.told(sent[0].job_id, len(page.epochs) - 1)
                assert len(page.epochs) >= 2 and "done" in told, (page.epochs, told)


async def send(person: Participant, page: ParticipantPage, count: int) -> list[Accepted]:
    for _ in range(count):
        answer = await person.submit(page.client_id)
        assert answer.job is not None, answer
    return person.accepted()[-count:]


async def agents_back(room: RoomView, since: float) -> bool:
    """Both agents were seen by the restarted manager (a claim or a heartbeat)."""
    seen = cast(
        "list[tuple[str, float]]",
        await room.redis.zrange(room.keys.workers, 0, -1, withscores=True),
    )
    return len(seen) == 2 and all(when > since for _, when in seen)
