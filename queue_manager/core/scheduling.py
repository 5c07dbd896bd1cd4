"""The scheduling policy as a pure function: in what order would the queued jobs be claimed?

Policy (the claim script `lua/claim.lua` implements the same thing inside Redis):

1. Jobs an admin moved to the front, most recently moved first.
2. Then lanes in order: instructor, high, normal, low.
3. Inside a lane, in `fair` mode, the user who was served least recently goes next and their
   oldest job is taken (round-robin across users, FIFO within one user). Serving a user stamps
   them with a fresh, larger number; a user never served yet carries a negative stamp derived
   from when they first queued, so newcomers go before anyone already served, first come first.
   In `fifo` mode the oldest job of the lane goes next, whoever it belongs to.

Jobs of paused users are not claimed; they get no position. Worker capabilities and running
limits are not known in advance, so positions assume a worker that can run everything.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Lane


class Mode(enum.StrEnum):
    FAIR = "fair"
    FIFO = "fifo"


@dataclass(frozen=True)
class QueuedJob:
    id: JobId
    seq: int


@dataclass(frozen=True)
class UserQueue:
    user: UserId
    served: float
    jobs: tuple[QueuedJob, ...]  # oldest first


@dataclass(frozen=True)
class LaneSnapshot:
    lane: Lane
    users: tuple[UserQueue, ...]


@dataclass(frozen=True)
class QueueSnapshot:
    mode: Mode
    front: tuple[tuple[JobId, UserId], ...]  # first to be claimed first
    lanes: tuple[LaneSnapshot, ...]  # in claim order
    paused_users: frozenset[UserId] = field(default_factory=frozenset)


def claim_order(snap: QueueSnapshot) -> list[JobId]:
    """Every claimable queued job, in the order the claim script would hand them out."""
    stamps: dict[UserId, float] = {}  # served stamps given out during the simulation
    clock = _max_stamp(snap) + 1
    order: list[JobId] = []
    taken: set[JobId] = set()
    for job_id, user in snap.front:
        if user in snap.paused_users:
            continue
        order.append(job_id)
        taken.add(job_id)
        stamps[user] = clock
        clock += 1
    for lane in snap.lanes:
        users = [u for u in lane.users if u.user not in snap.paused_users]
        if snap.mode is Mode.FIFO:
            jobs = sorted((j for u in users for j in u.jobs), key=lambda j: j.seq)
            order.extend(j.id for j in jobs if j.id not in taken)
            continue
        clock = _round_robin(users, stamps, clock, taken, order)
    return order


def positions(snap: QueueSnapshot) -> dict[JobId, int]:
    """1-based position of each claimable job: 1 is the next job a free GPU takes."""
    return {job_id: i for i, job_id in enumerate(claim_order(snap), start=1)}


def _round_robin(
    users: Iterable[UserQueue],
    stamps: dict[UserId, float],
    clock: float,
    taken: set[JobId],
    order: list[JobId],
) -> float:
    heap: list[tuple[float, UserId, int, tuple[QueuedJob, ...]]] = []
    for u in users:
        jobs = tuple(j for j in u.jobs if j.id not in taken)
        if jobs:
            heap.append((stamps.get(u.user, u.served), u.user, 0, jobs))
    heapq.heapify(heap)
    while heap:
        _, user, i, jobs = heapq.heappop(heap)
        order.append(jobs[i].id)
        stamps[user] = clock
        if i + 1 < len(jobs):
            heapq.heappush(heap, (clock, user, i + 1, jobs))
        clock += 1
    return clock


def _max_stamp(snap: QueueSnapshot) -> float:
    return max((u.served for lane in snap.lanes for u in lane.users), default=0.0)
