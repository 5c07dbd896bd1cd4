"""When each queued job will start and finish, and why others go first (pure).

The estimate plays the room forward: the GPUs serving it (their running jobs' time left and a
cold endpoint's start-up first), then, each time one is free, the claim the claim script
(`lua/claim.lua`) would make for it: jobs moved to the front, then lanes in order, inside a lane
the least recently served user who is neither paused nor at their running limit and has a job
this GPU can run, stamped as served when taken. Each job holds its GPU for the time its shape
took there before (`runtimes.RunHistory`). So a second job of someone limited to one running
job waits for their first, and a newcomer's first job goes before everyone's second, exactly
as the queue will do it; not `position x mean run time`.

Times are seconds from `now`. A job no GPU will take (held, a paused user, every GPU gone)
gets no estimate.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from queue_manager.core.endpoint_status import EndpointPhase, EndpointStatus, typical_cold_start
from queue_manager.core.endpoints import endpoint_of
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import LANES, Lane
from queue_manager.core.runtimes import UNKNOWN_SHAPE, RunHistory, Shape, gpu_key
from queue_manager.core.scheduling import Mode, QueueSnapshot, claim_order
from queue_manager.core.workers import WorkerInfo, WorkerState

# A cold endpoint never measured yet: serverless ComfyUI images start in about 2-5 minutes.
UNMEASURED_COLD_START = 180.0
# A job that ran past its estimate still has this much left (at least), until it ends.
MIN_LEFT = 1.0
# Played forward at most this far (a day) or this many claims: beyond is "unknown".
HORIZON = 86_400.0
NO_LIMIT = -1

_Blocked = Callable[[UserId], bool]


@dataclass(frozen=True)
class Gpu:
    """A worker or endpoint slot as the estimate sees it."""

    worker: WorkerId
    key: str  # whose run times apply (`runtimes.gpu_key`)
    ready_in: float = 0.0  # seconds before it can start anything (a cold endpoint)
    takes_jobs: bool = True  # False: it finishes what it runs and takes nothing more


@dataclass(frozen=True)
class Running:
    id: JobId
    user: UserId
    worker: WorkerId | None
    shape: Shape
    claimed_at: float | None
    started_at: float | None
    progress: tuple[int, int] | None = None  # ComfyUI's (value, max) of the node running


@dataclass(frozen=True)
class Room:
    snapshot: QueueSnapshot
    gpus: tuple[Gpu, ...]
    running: tuple[Running, ...] = ()
    shapes: Mapping[JobId, Shape] = field(default_factory=dict)
    # The GPUs that can run a job (its node types and models); a job left out: any of them.
    eligible: Mapping[JobId, frozenset[WorkerId]] = field(default_factory=dict)
    max_running: int = NO_LIMIT  # the room's limit per user
    user_max_running: Mapping[UserId, int] = field(default_factory=dict)  # overrides


@dataclass(frozen=True)
class Estimate:
    start: float | None  # seconds from now (0 for a running job); None: unknown
    finish: float | None


UNKNOWN = Estimate(None, None)


def gpus_of(
    workers: list[WorkerInfo], endpoints: Mapping[str, EndpointStatus], now: float
) -> tuple[Gpu, ...]:
    """The GPUs as the estimate sees them: online workers and the slots of endpoints that are
    not failing take jobs (a cold endpoint after its cold start); the others finish theirs."""
    gpus = []
    for w in workers:
        name = endpoint_of(w.id)
        status = endpoints.get(name) if name is not None else None
        if name is not None and status is None:
            continue  # its endpoint was removed: the slot is on its way out
        takes = w.state is WorkerState.ONLINE
        if status is not None and status.phase is EndpointPhase.FAILING:
            takes = False
        ready = cold_start_left(status, now) if status is not None else 0.0
        gpus.append(Gpu(w.id, gpu_key(w.id), ready, takes))
    return tuple(gpus)


def cold_start_left(status: EndpointStatus, now: float) -> float:
    """Seconds before an endpoint answers: its typical cold start when cold, what is left of
    it while starting, nothing once it is up."""
    typical = typical_cold_start(status.cold_starts) or UNMEASURED_COLD_START
    if status.phase is EndpointPhase.COLD:
        return typical
    if status.phase is EndpointPhase.STARTING:
        return max(typical - (now - status.since), MIN_LEFT)
    return 0.0


def time_left(job: Running, gpu: Gpu | None, history: RunHistory, now: float) -> float:
    """Seconds until a running job ends: its expected run time less what it has run (an
    endpoint's run is counted from ComfyUI's start, after any cold start), corrected by
    ComfyUI's own progress where it has reported some."""
    key = gpu.key if gpu is not None else gpu_key(job.worker or "")
    expected = history.expected(key, job.shape)
    if key != job.worker and job.started_at is None:  # an endpoint, not started yet
        return (gpu.ready_in if gpu is not None else 0.0) + expected
    began = (job.started_at if key != job.worker else job.claimed_at) or now
    left = expected - (now - began)
    if job.progress is not None and job.started_at is not None:
        value, top = job.progress
        if 0 < value <= top:
            done = value / top
            by_progress = (now - job.started_at) * (1 - done) / done
            left = by_progress if left <= 0 else (left + by_progress) / 2
    return max(left, MIN_LEFT)


def estimate(room: Room, history: RunHistory, now: float) -> dict[JobId, Estimate]:
    """Every running and queued job's estimated start and finish (seconds from now)."""
    sim = _Simulation(room, history)
    found: dict[JobId, Estimate] = {}
    by_worker = {g.worker: g for g in room.gpus}
    for job in room.running:
        gpu = by_worker.get(job.worker) if job.worker else None
        left = time_left(job, gpu, history, now)
        found[job.id] = Estimate(0.0, left)
        sim.occupy(job.user, gpu, left)
    for gpu in room.gpus:
        if gpu.takes_jobs and gpu.worker not in sim.busy:
            sim.free_at(gpu, gpu.ready_in)
    found.update(sim.run())
    for lane in room.snapshot.lanes:
        for queue in lane.users:
            for queued in queue.jobs:
                found.setdefault(queued.id, UNKNOWN)
    return found


class _Simulation:
    """The claim script's choices, replayed on a clock of seconds from now."""

    def __init__(self, room: Room, history: RunHistory) -> None:
        self.room = room
        self.history = history
        self.queue = _Queue(room)
        self.running: Counter[UserId] = Counter()
        self.busy: set[WorkerId] = set()
        self.idle: list[Gpu] = []
        self._events: list[tuple[float, int, UserId | None, Gpu | None]] = []
        self._order = itertools.count()

    def occupy(self, user: UserId, gpu: Gpu | None, left: float) -> None:
        self.running[user] += 1
        if gpu is not None:
            self.busy.add(gpu.worker)
        self._push(left, user, gpu if gpu is not None and gpu.takes_jobs else None)

    def free_at(self, gpu: Gpu, at: float) -> None:
        self._push(at, None, gpu)

    def _push(self, at: float, user: UserId | None, gpu: Gpu | None) -> None:
        heapq.heappush(self._events, (at, next(self._order), user, gpu))

    def run(self) -> dict[JobId, Estimate]:
        found: dict[JobId, Estimate] = {}
        while self._events and self.queue.left:
            now = self._events[0][0]
            if now > HORIZON:
                break
            while self._events and self._events[0][0] == now:
                _, _, user, gpu = heapq.heappop(self._events)
                if user is not None:
                    self.running[user] -= 1
                if gpu is not None:
                    self.idle.append(gpu)
            found.update(self._claims(now))
        return found

    def _claims(self, now: float) -> dict[JobId, Estimate]:
        found = {}
        waiting = []
        order = {g.worker: i for i, g in enumerate(self.room.gpus)}
        for gpu in sorted(self.idle, key=lambda g: order.get(g.worker, 0)):
            taken = self.queue.claim(gpu, self._blocked)
            if taken is None:
                waiting.append(gpu)
                continue
            job_id, user = taken
            shape = self.room.shapes.get(job_id, UNKNOWN_SHAPE)
            ends = now + self.history.expected(gpu.key, shape)
            found[job_id] = Estimate(now, ends)
            self.running[user] += 1
            self._push(ends, user, gpu)
        self.idle = waiting
        return found

    def _blocked(self, user: UserId) -> bool:
        if user in self.room.snapshot.paused_users:
            return True
        limit = self.room.user_max_running.get(user, self.room.max_running)
        return 0 <= limit <= self.running[user]


class _Queue:
    """The queued jobs as the claim script walks them, taken one claim at a time."""

    def __init__(self, room: Room) -> None:
        snap = room.snapshot
        self.fifo = snap.mode is Mode.FIFO
        self.eligible = room.eligible
        self.front = list(snap.front)
        self.lanes = [
            (lane.lane, {u.user: [(j.id, j.seq) for j in u.jobs] for u in lane.users})
            for lane in snap.lanes
        ]
        self.score = {(lane.lane, u.user): u.served for lane in snap.lanes for u in lane.users}
        self.stamped: dict[UserId, float] = {}
        self.clock = max(self.score.values(), default=0.0) + 1
        self.taken: set[JobId] = set()
        self.left = sum(len(jobs) for _, users in self.lanes for jobs in users.values())

    def claim(self, gpu: Gpu, blocked: _Blocked) -> tuple[JobId, UserId] | None:
        for job_id, user in self.front:
            if job_id not in self.taken and not blocked(user) and self._fits(job_id, gpu):
                return self._take(job_id, user)
        for lane, users in self.lanes:
            found = self._in_lane(lane, users, gpu, blocked)
            if found is not None:
                return self._take(*found)
        return None

    def _in_lane(
        self, lane: Lane, users: dict[UserId, list[tuple[JobId, int]]], gpu: Gpu, blocked: _Blocked
    ) -> tuple[JobId, UserId] | None:
        best: tuple[int, JobId, UserId] | None = None
        for user in sorted(users, key=lambda u: (self._served(lane, u), u)):
            if blocked(user):
                continue
            first = next(
                ((j, s) for j, s in users[user] if j not in self.taken and self._fits(j, gpu)),
                None,
            )
            if first is None:
                continue
            if not self.fifo:
                return first[0], user
            if best is None or first[1] < best[0]:
                best = (first[1], first[0], user)
        return None if best is None else (best[1], best[2])

    def _served(self, lane: Lane, user: UserId) -> float:
        return self.stamped.get(user, self.score.get((lane, user), 0.0))

    def _fits(self, job_id: JobId, gpu: Gpu) -> bool:
        allowed = self.eligible.get(job_id)
        return allowed is None or gpu.worker in allowed

    def _take(self, job_id: JobId, user: UserId) -> tuple[JobId, UserId]:
        self.taken.add(job_id)
        self.stamped[user] = self.clock
        self.clock += 1
        self.left -= 1
        return job_id, user


# -- why others go first ---------------------------------------------------------------------


def ahead_reason(snap: QueueSnapshot, job_id: JobId) -> str | None:
    """Why the people ahead of this job are there, in the policy's own terms: jobs moved to the
    front, higher lanes, people who have not had a turn yet, people whose last turn came before
    this user's. None when nobody else is ahead (or in fifo mode, where arrival decides)."""
    order = claim_order(snap)
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
