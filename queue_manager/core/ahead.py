"""Why the people ahead of a job are there, in the fair policy's own terms (pure).

A participant whose place got worse ("#1 Next to run" became "#5") is told why, from the claim
order itself rather than from a diff of two positions: jobs the instructor moved to the front,
jobs in a higher lane, people who have not had a turn yet, people whose last turn came before
this user's.
"""

from __future__ import annotations

from queue_manager.core.ids import JobId
from queue_manager.core.jobs import LANES
from queue_manager.core.scheduling import Mode, QueueSnapshot, claim_order


def ahead_reason(
    snap: QueueSnapshot, job_id: JobId, order: list[JobId] | None = None
) -> str | None:
    """Why the people ahead of this job are there, in the policy's own terms: jobs moved to the
    front, higher lanes, people who have not had a turn yet, people whose last turn came before
    this user's. None when nobody else is ahead (or in fifo mode, where arrival decides)."""
    order = claim_order(snap) if order is None else order  # (the caller's, computed once)
    if job_id not in order:
        return None
    lane_of = {j.id: (lane.lane, u.user, u.served) for lane in snap.lanes for u in lane.users
               for j in u.jobs}  # fmt: skip
    mine = lane_of.get(job_id)
    if mine is None:
        return None
    lane, me, served = mine
    front = {j for j, _ in snap.front}
    moved, higher, new, earlier = set(), set(), set(), set()
    for other in order[: order.index(job_id)]:
        o_lane, user, o_served = lane_of[other]
        if user == me:
            continue
        if other in front:
            moved.add(other)
        elif LANES.index(o_lane) < LANES.index(lane):
            higher.add(other)
        elif snap.mode is Mode.FAIR and o_served < 0:
            new.add(user)
        elif snap.mode is Mode.FAIR and o_served < served:
            earlier.add(user)
    return _reason(len(moved), len(higher), len(new), len(earlier))


def _reason(moved: int, higher: int, new: int, earlier: int) -> str | None:
    parts = []
    if moved:
        parts.append(_count(moved, "job", "jobs") + " moved to the front by the instructor")
    if higher:
        parts.append(_count(higher, "job", "jobs") + " with a higher priority")
    people = []
    if new:
        have = "has" if new == 1 else "have"
        people.append(f"{_count(new, 'person', 'people')} who {have} not had a turn yet")
    if earlier:
        whose = "whose last turn came before yours"
        people.append(f"{_count(earlier, 'person', 'people')} {whose}" if not new else
                      f"{earlier} {whose}")  # fmt: skip
    if people:
        parts.append(" and ".join(people))
    if not parts:
        return None
    total = moved + higher + new + earlier
    return "; ".join(parts) + (" goes first" if total == 1 else " go first")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
