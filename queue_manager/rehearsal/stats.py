"""The figures of a rehearsal, from what the participants saw and the instructor's job records:
time-to-image, the order jobs ran in and how fair it was, GPU busy time, the queue manager's
memory, errors by kind. Pure: every time is passed in.

Fairness. The queue serves users round-robin (the least recently served user next): while a
participant waits, nobody else gets more than one job ahead of them. For each job of user B,
its wait counts from when it was queued, or from B's previous start if that is later (B was
being served, not overtaken, before); every other user A's starts inside that wait are jobs A
got ahead of B. The most any A got ahead of any B is the measure: 1 is strict round-robin, more
means someone was overtaken twice by the same person.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Something that went wrong: `kind` groups them in the report (login, refused, failed,
    timeout, lost, socket, browser, ...), `user` says whose."""

    kind: str
    user: str
    message: str


@dataclass(frozen=True)
class JobRun:
    """One job as the rehearsal saw it. Client times (`submitted`, `image`) are monotonic
    seconds on this machine. `queued`, `started` (its GPU began it) and `finished` are
    the server's clock from the instructor's job records, or this machine's wall clock (when
    it was sent, when ComfyUI said it started) where no record could be read."""

    user: str
    number: int  # 1..K for its participant
    via: str  # "socket" or "browser"
    submitted: float | None = None
    image: float | None = None
    prompt_id: str | None = None
    problem: Problem | None = None
    queued: float | None = None
    started: float | None = None
    finished: float | None = None
    worker: str | None = None

    @property
    def time_to_image(self) -> float | None:
        if self.submitted is None or self.image is None or self.problem is not None:
            return None
        return self.image - self.submitted


@dataclass(frozen=True)
class Spread:
    n: int
    p50: float
    p90: float
    max: float


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the two nearest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: Iterable[float]) -> Spread | None:
    found = list(values)
    if not found:
        return None
    return Spread(len(found), percentile(found, 50), percentile(found, 90), max(found))


def run_order(jobs: Iterable[JobRun]) -> list[JobRun]:
    """The jobs that started, in the order they started."""
    started = [j for j in jobs if j.started is not None]
    return sorted(started, key=lambda j: (j.started or 0.0, j.queued or 0.0))


def rounds(order: Sequence[JobRun]) -> list[list[str]]:
    """The run order cut into rounds: a round ends before a user comes again."""
    found: list[list[str]] = []
    current: list[str] = []
    for job in order:
        if job.user in current:
            found.append(current)
            current = []
        current.append(job.user)
    return [*found, current] if current else found


@dataclass(frozen=True)
class Fairness:
    most_ahead: int  # the most jobs one participant got ahead of another while both waited
    ahead: str | None  # who got ahead ...
    behind: str | None  # ... of whom
    overtaken: int  # jobs that someone got more than one job ahead of

    @property
    def round_robin(self) -> bool:
        return self.most_ahead <= 1


def fairness(jobs: Iterable[JobRun]) -> Fairness:
    order = run_order(jobs)
    previous: dict[str, float] = {}
    worst, overtaken = 0, 0
    who: tuple[str | None, str | None] = (None, None)
    for job in order:
        assert job.started is not None
        queued = job.started if job.queued is None else job.queued
        since = max(queued, previous.get(job.user, -math.inf))
        ahead = Counter(
            other.user
            for other in order
            if other.user != job.user and other.started is not None
            and since < other.started < job.started
        )  # fmt: skip
        previous[job.user] = job.started
        if not ahead:
            continue
        user, count = ahead.most_common(1)[0]
        overtaken += count > 1
        if count > worst:
            worst, who = count, (user, job.user)
    return Fairness(worst, who[0], who[1], overtaken)


@dataclass(frozen=True)
class Busy:
    worker: str
    jobs: int
    seconds: float
    wall: float

    @property
    def share(self) -> float:
        return self.seconds / self.wall if self.wall > 0 else 0.0


def gpu_busy(
    jobs: Iterable[JobRun], workers: Iterable[str], start: float, end: float
) -> list[Busy]:
    """Per worker: how long it ran the rehearsal's jobs (overlaps counted once) within
    [start, end]. Workers that ran none are listed with 0."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for job in jobs:
        if job.worker and job.started is not None and job.finished is not None:
            spans[job.worker].append((max(job.started, start), min(job.finished, end)))
    names = sorted(set(workers) | set(spans))
    wall = max(end - start, 0.0)
    return [Busy(w, len(spans[w]), _covered(spans[w]), wall) for w in names]


def _covered(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -math.inf
    for low, high in sorted(spans):
        if high <= reach:
            continue
        total += high - max(low, reach)
        reach = high
    return total


@dataclass(frozen=True)
class Memory:
    start: float
    peak: float
    end: float
    samples: tuple[tuple[float, float], ...]  # (seconds since the start, bytes)


def memory(samples: Sequence[tuple[float, float]]) -> Memory | None:
    if not samples:
        return None
    values = [b for _, b in samples]
    return Memory(values[0], max(values), values[-1], tuple(samples))


def problems_by_kind(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    grouped: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        grouped[p.kind].append(p)
    return dict(sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0])))
