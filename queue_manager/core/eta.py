"""When each queued job will start and finish, and why others go first (pure).

The estimate plays the room forward: the GPUs serving it (their running jobs' time left and a
cold endpoint's start-up first), then, each time one is free, the claim the claim script
(`lua/claim.lua`) would make for it: jobs moved to the front, then lanes in order, inside a lane
the least recently served user who is neither paused nor at their running limit and has a job
this GPU can run, stamped as served when taken. Each job holds its GPU for the time its shape
took there before (`runtimes.RunHistory`). So a second job of someone limited to one running
job waits for their first, and a newcomer's first job goes before everyone's second, exactly
as the queue will do it; not `position x mean run time`.

Participants come back: after a result they look at it, change something and run again, and
under the fair policy their next job goes before the second jobs of everyone served after them.
An estimate that ignored them would be too early for every job that waits through a few rounds.
So the room's measured habit (`Returns`: the typical time from a result to the next Run, and
when each participant's last job ended) adds the Runs those participants will likely make
while a job waits, as the queue would place them; they are never shown, only waited behind.

Times are seconds from `now`. A job no GPU will take (held, a paused user, every GPU gone)
gets no estimate.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from queue_manager.core.endpoint_status import EndpointPhase, EndpointStatus, typical_cold_start
from queue_manager.core.endpoints import endpoint_of
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane
from queue_manager.core.runtimes import UNKNOWN_SHAPE, RunHistory, Shape, gpu_key
from queue_manager.core.scheduling import Mode, QueueSnapshot
from queue_manager.core.workers import WorkerInfo, WorkerState

# A cold endpoint never measured yet: serverless ComfyUI images start in about 2-5 minutes.
UNMEASURED_COLD_START = 180.0
# A job that ran past its estimate still has this much left (at least), until it ends.
MIN_LEFT = 1.0
# Played forward at most this far (a day) or this many claims: beyond is "unknown".
HORIZON = 86_400.0
NO_LIMIT = -1
# A participant idle this many typical think times (and at least GONE_MIN seconds) has left
# or stopped for now: not expected back.
GONE_AFTER = 3.0
GONE_MIN = 600.0
# At most this many expected Runs per participant in one estimate (a day-long horizon would
# otherwise fill with them).
MAX_RETURNS = 1
EXPECTED = "~"  # the id prefix of an expected (not yet submitted) job inside the simulation

_Blocked = Callable[[UserId], bool]
_Event = Literal["ended", "free", "runs"]


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
class Returns:
    """How the room's participants come back, as measured (`store.runtimes`)."""

    think: float | None = None  # typical seconds from a result to the next Run; None: unknown
    ended_ago: Mapping[UserId, float] = field(default_factory=dict)  # their last job ended
    served: Mapping[UserId, float] = field(default_factory=dict)  # served stamps (claim order)
    shapes: Mapping[UserId, Shape] = field(default_factory=dict)  # what each ran last

    def back_in(self, ended_ago: float) -> float | None:
        """Seconds until a participant whose last job ended `ended_ago` seconds ago runs
        again; None if they are not expected back."""
        if self.think is None or ended_ago > max(GONE_AFTER * self.think, GONE_MIN):
            return None
        return self.think


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
    returns: Returns = field(default_factory=Returns)


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
    for user, ago in room.returns.ended_ago.items():
        back = room.returns.back_in(ago)
        if back is not None and not sim.running[user] and not sim.queue.has_jobs(user):
            sim.arrive_at(back, user)
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
        self.expected: dict[JobId, Shape] = {}  # Runs the room will likely make meanwhile
        self.returned: Counter[UserId] = Counter()
        self._events: list[tuple[float, int, _Event, UserId | None, Gpu | None]] = []
        self._order = itertools.count()

    def occupy(self, user: UserId, gpu: Gpu | None, left: float) -> None:
        self.running[user] += 1
        if gpu is not None:
            self.busy.add(gpu.worker)
        self._push(left, "ended", user, gpu if gpu is not None and gpu.takes_jobs else None)

    def free_at(self, gpu: Gpu, at: float) -> None:
        self._push(at, "free", None, gpu)

    def arrive_at(self, at: float, user: UserId) -> None:
        if user not in self.room.snapshot.paused_users and self.returned[user] < MAX_RETURNS:
            self.returned[user] += 1
            self._push(at, "runs", user, None)

    def _push(self, at: float, kind: _Event, user: UserId | None, gpu: Gpu | None) -> None:
        heapq.heappush(self._events, (at, next(self._order), kind, user, gpu))

    def run(self) -> dict[JobId, Estimate]:
        found: dict[JobId, Estimate] = {}
        while self._events and self.queue.left:
            now = self._events[0][0]
            if now > HORIZON:
                break
            while self._events and self._events[0][0] == now:
                _, _, kind, user, gpu = heapq.heappop(self._events)
                if kind == "runs" and user is not None:
                    self._expect(user)
                elif kind == "ended" and user is not None:
                    self._ended(user, now)
                if gpu is not None:
                    self.idle.append(gpu)
            found.update(self._claims(now))
        return found

    def _ended(self, user: UserId, now: float) -> None:
        """A job of `user` ended: once they have nothing left, they will likely run again."""
        self.running[user] -= 1
        think = self.room.returns.think
        if think is not None and not self.running[user] and not self.queue.has_jobs(user):
            self.arrive_at(now + think, user)

    def _expect(self, user: UserId) -> None:
        job_id = JobId(f"{EXPECTED}{user}#{self.returned[user]}")
        self.expected[job_id] = self.room.returns.shapes.get(user, UNKNOWN_SHAPE)
        self.queue.add(job_id, user, self.room.returns.served.get(user, 0.0))

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
            shape = self.expected.get(job_id) or self.room.shapes.get(job_id, UNKNOWN_SHAPE)
            ends = now + self.history.expected(gpu.key, shape)
            if job_id not in self.expected:
                found[job_id] = Estimate(now, ends)
            self.running[user] += 1
            self._push(ends, "ended", user, gpu)
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
        self._seq = 1 + max((s for _, users in self.lanes for jobs in users.values()
                             for _, s in jobs), default=0)  # fmt: skip

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
        if not job_id.startswith(EXPECTED):
            self.left -= 1
        return job_id, user

    def has_jobs(self, user: UserId) -> bool:
        return any(j not in self.taken for _, users in self.lanes for j, _ in users.get(user, ()))

    def add(self, job_id: JobId, user: UserId, served: float) -> None:
        """A Run the room will likely make: last in the user's own queue, in the normal lane,
        the user placed by when they were last served (as the submit script places them)."""
        if not any(name is Lane.NORMAL for name, _ in self.lanes):
            self.lanes.append((Lane.NORMAL, {}))
        lane, users = next((n, u) for n, u in self.lanes if n is Lane.NORMAL)
        users.setdefault(user, []).append((job_id, self._seq))
        self.score.setdefault((lane, user), served)
        self._seq += 1
