"""End checks this half of the fault suite adds to `support/invariants.py`: the event stream
announced each accepted job's end exactly once (a page or dashboard told twice, or never,
reads it from there), and the store holds no job that nobody was told was accepted (a
submission refused with an error must not run anyway)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from queue_manager.core.events import FINAL
from queue_manager.core.ids import UserId
from queue_manager.store.events import EventLog
from tests.reliability.support.invariants import Accepted, RoomView


async def final_events(room: RoomView) -> Counter[str]:
    """How many times the event stream says each job ended."""
    stream = EventLog(room.redis, room.keys)
    ends: Counter[str] = Counter()
    after = "0-0"
    while batch := await stream.read(after, count=1000):
        ends.update(e.job for e in batch if e.type in FINAL and e.job is not None)
        after = batch[-1].id
    return ends


async def announced_once(room: RoomView, accepted: Sequence[Accepted]) -> list[str]:
    ends = await final_events(room)
    return [
        f"job {a.job_id} of {a.user}: the event stream announced its end {ends[a.job_id]} times"
        for a in accepted
        if ends[a.job_id] != 1
    ]


async def nothing_half_accepted(
    room: RoomView, users: Sequence[str], accepted: Sequence[Accepted]
) -> list[str]:
    told = {a.job_id for a in accepted}
    problems = []
    for user in users:
        for job in await room.user_jobs(UserId(user)):
            if job.id not in told:
                problems.append(f"job {job.id} of {user} ({job.status}) was never accepted")
    return problems


async def assert_told_truly(
    room: RoomView, users: Sequence[str], accepted: Sequence[Accepted]
) -> None:
    problems = await announced_once(room, accepted)
    problems += await nothing_half_accepted(room, users, accepted)
    assert not problems, "\n  ".join(
        ["the record disagrees with what people were told:", *problems]
    )
