"""Redis SIGKILLed mid-burst under a running `comfy-workshop up`, which starts it again (its AOF
in the data folder): every job the queue manager accepted ends exactly once, a Run pressed
while Redis is away is refused with a clear 503 (never a 500, never a hang, never accepted
half), and the participants' pages come back by themselves.

`up` restarts a Redis that died after a back-off that doubles while it keeps dying (0.5 s, 1 s,
2 s, ...), and the queue manager's Redis client retries a command for about 3.5 s: one kill is
ridden out unseen. So the test kills each new Redis as soon as `up` has started it, as a crash
loop would, until a Run has been refused."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from queue_manager.core.ids import UserId
from tests.integration.cli.up_process import Proc, children_of
from tests.reliability.support.invariants import (
    assert_room_consistent,
    workshop_room,
)
from tests.support.waiting import until
from tests.support.workshop import start_workshop, stop_workshop

from ._ends import assert_told_truly
from ._pages import Participant, accepted, logged_in, open_pages
from ._stack import under_way

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

USERS = [UserId(f"user{i:03d}") for i in range(1, 5)]
KILLS = 6  # up's back-off is 8 s by then: far past the client's retries
PACE = 0.5  # seconds between two Runs of one participant: a queue that stays short


async def test_a_sigkilled_redis_loses_no_accepted_job_and_refuses_runs_clearly(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = {"CW_MAX_QUEUED_PER_USER": "100"}
    up, shop = await asyncio.to_thread(start_workshop, data, len(USERS), 2, 0.03, env)
    try:
        async with (
            workshop_room(data) as room,
            logged_in(shop.passwords, USERS, shop.url) as people,
            open_pages(shop.passwords, USERS, shop.url) as pages,
        ):
            runs = Runs(people, [page.client_id for page in pages])
            try:
                await until(lambda: under_way(room, accepted(people)), 60, "a burst under way")
                kills = await crash_loop(up.pid, people)
                await until(lambda: runs.accepted_again(), 60, "Runs accepted again")
            finally:
                await runs.stop()
            assert not runs.errors, runs.errors  # every Run was answered, none hung
            refused = [a for p in people for a, _ in p.sent if a.status != 200]
            assert refused, f"no Run was refused in {kills} kills"
            for answer in refused:
                assert answer.status == 503, answer
                assert answer.body["error"]["type"] == "StoreUnavailable", answer
            jobs = accepted(people)
            await assert_room_consistent(room, jobs, pages, set(USERS), timeout=90)
            await assert_told_truly(room, USERS, jobs)
    finally:
        await asyncio.to_thread(stop_workshop, up)


class Runs:
    """Each participant pressing Run again and again from their page until stopped; a Run
    that gets no answer at all (a hang, a dropped connection) is an error."""

    def __init__(self, people: Sequence[Participant], client_ids: Sequence[str]) -> None:
        self.people = people
        self.errors: list[str] = []
        self._stopping = asyncio.Event()
        pairs = zip(people, client_ids, strict=True)
        self._tasks = [asyncio.create_task(self._press(p, c)) for p, c in pairs]

    async def _press(self, person: Participant, client_id: str) -> None:
        while not self._stopping.is_set():
            try:
                await person.submit(client_id, steps=4)
            except httpx.HTTPError as exc:
                self.errors.append(f"{person.name}: {exc!r}")
            await asyncio.sleep(PACE)

    def accepted_again(self) -> bool:
        """Every participant had two Runs accepted after their last refused one."""
        for person in self.people:
            statuses = [a.status for a, _ in person.sent]
            last_refused = max((i for i, s in enumerate(statuses) if s != 200), default=-1)
            if statuses[last_refused + 1 :].count(200) < 2:
                return False
        return True

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._tasks)


def redis_of(up: int) -> Proc | None:
    return next((c for c in children_of(up) if c.is_("redis-server")), None)


def refused(people: Sequence[Participant]) -> bool:
    return any(a.status != 200 for p in people for a, _ in p.sent)


async def crash_loop(up: int, people: Sequence[Participant]) -> int:
    """SIGKILL up's Redis, and each one `up` starts again, until a Run was refused; returns
    how many kills that took."""
    for kill in range(1, KILLS + 1):
        await kill_redis(up, people)
        if refused(people):
            return kill
    return KILLS


async def kill_redis(up: int, people: Sequence[Participant]) -> None:
    """Kill the Redis `up` runs now; return once a Run was refused or `up` started another."""
    await until(lambda: redis_of(up) is not None, 30, "up's redis-server")
    victim = redis_of(up)
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    await until(lambda: refused(people) or restarted(up, victim), 30, "a refusal or a restart")


def restarted(up: int, old: Proc) -> bool:
    new = redis_of(up)
    return new is not None and new.pid != old.pid
