"""A 20 x 10 burst through 2 workers, on a whole `comfy-workshop up --users 20 --workers 2`
(its private redis-server, the queue manager on uvicorn, two ComfyUI simulators and two worker
agents, all real processes).

Twenty participants log in with the login form, open their socket as the ComfyUI page does
(with their `clientId`) and click Run ten times each (`POST /<user>/api/prompt`), all twenty at
once, while the instructor holds the queue paused; then the instructor resumes it. Passwords
are hashed at Argon2's cheapest parameters (see burst_support; the production cost of twenty
logins at once is a figure of `benchmarks/burst.py`).

Strict round-robin, checked claim by claim: each claim goes to the participant served least
recently (never served: first come first) among those with a waiting job and under their
running limit, and it is their oldest job. With every job waiting before the first claim this
leaves no choice open (ten rounds of all twenty, in the order of their first submission,
unless a slow job holds its owner at the limit), so the check is exact. The order is read from
the event stream, not from claimed_at: the stream is the one total order of changes, while two
claims' clock readings, taken before their scripts ran, may come out swapped.

Asserted: all 200 complete, each exactly once (one claim, one completion, one attempt, one
`execution_success` on its own page's socket), its one output file in its own user's folder
and nowhere else; no 5xx on any request; strict round-robin within the lane.
Printed, never asserted: the queue manager's RSS (before, peak, after) and event latency.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import JsonValue

from queue_manager.cli.target import running_redis_url
from queue_manager.core.events import Event, EventType
from queue_manager.core.ids import JobId, UserId
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from queue_manager.store.events import EventLog
from queue_manager.store.keys import Keys
from tests.reliability.burst_support import (
    Answers,
    Laps,
    Participant,
    RssSampler,
    log_in,
    mib,
    rounds,
    spread,
    start_workshop,
    unfair_claims,
)
from tests.support.waiting import until
from tests.support.workshop import Workshop, stop_workshop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

USERS = 20
JOBS = 10
WORKERS = 2


def prompt(user: str, k: int) -> dict[str, Any]:
    """The smallest run that writes a file, named after its user and its number."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 24, "batch_size": 1, "color": 0x3366CC},
        },
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": f"burst/{user}-{k:02d}"},
        },
    }


@dataclass
class Up:
    pid: int  # of `up`: the queue manager runs in this process (its children are the rest)
    workshop: Workshop
    seconds: float  # from launch to /readyz


@dataclass
class Burst:
    people: list[Participant]
    records: dict[str, dict[str, Any]]  # job id -> the instructor's view of the job
    events: list[Event]  # the whole event stream, oldest first
    max_running: int  # the room's running limit per participant
    laps: Laps


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    began = time.monotonic()
    proc, running = start_workshop(tmp_path / "data", users=USERS, workers=WORKERS)
    try:
        yield Up(proc.pid, running, time.monotonic() - began)
    finally:
        stop_workshop(proc)


async def test_twenty_participants_times_ten_jobs_through_two_workers_run_fair_and_whole(
    up: Up, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = Answers()
    memory = RssSampler(up.pid)
    burst = await run_burst(up.workshop, answers, memory)

    claims = [e for e in burst.events if e.type is EventType.JOB_CLAIMED]
    assert_each_ran_once(burst)
    assert_outputs_in_own_folders(up.workshop.data, burst.records)
    assert answers.server_errors() == []
    assert [p.name for p in burst.people if p.closed is not None] == []
    assert unfair_claims(burst.events, burst.max_running) == []
    assert {e.worker for e in claims} == {f"sim-{i}" for i in range(1, WORKERS + 1)}
    with capsys.disabled():
        print_figures(up, burst, claims, memory, answers)


async def run_burst(ws: Workshop, answers: Answers, memory: RssSampler) -> Burst:
    """The instructor pauses the queue; twenty pages log in, open their socket and click Run
    ten times each, all at once; the instructor resumes; every page sees its ten jobs end."""
    laps = Laps()
    admin = answers.client(ws.url)
    names = [f"user{i:03d}" for i in range(1, USERS + 1)]
    people = [Participant(ws.url, name, ws.passwords[name], answers) for name in names]
    try:
        await log_in(admin, "instructor", ws.passwords["instructor"])
        await until(lambda: workers_online(admin), timeout=60, what="both workers online")
        assert (await admin.post("/admin/api/queue/pause")).status_code == 200
        laps.lap("instructor logged in, workers online, queue paused")
        memory.start()
        await asyncio.gather(*(p.open() for p in people))
        laps.lap(f"{USERS} logins + sockets")
        await asyncio.gather(*(click_run(p) for p in people))
        laps.lap(f"{USERS * JOBS} submissions")
        assert (await admin.post("/admin/api/queue/resume")).status_code == 200
        await until(lambda: all(p.finished() for p in people), timeout=180, what="all done")
        laps.lap("resume -> every page saw its jobs end")
        return await after_the_burst(ws, admin, people, laps)
    finally:
        memory.stop()
        await asyncio.gather(*(p.close() for p in people))
        await admin.aclose()


async def after_the_burst(
    ws: Workshop, admin: httpx.AsyncClient, people: list[Participant], laps: Laps
) -> Burst:
    records = await job_records(admin, people)
    events = await stream(ws.data)
    max_running = (await admin.get("/admin/api/state")).json()["limits"]["max_running"]
    await fetch_outputs(people, records)
    laps.lap("records, stream and every output read back")
    return Burst(people, records, events, int(max_running), laps)


async def workers_online(admin: httpx.AsyncClient) -> bool:
    state = (await admin.get("/admin/api/state")).json()
    online = [w for w in state["workers"] if w["state"] == "online"]
    return len(online) == WORKERS


async def click_run(p: Participant) -> None:
    for k in range(1, JOBS + 1):
        await p.submit(prompt(p.name, k))


async def job_records(
    admin: httpx.AsyncClient, people: list[Participant]
) -> dict[str, dict[str, Any]]:
    """Every job as the instructor's API shows it (status, timeline, times, outputs)."""
    records: dict[str, dict[str, Any]] = {}

    async def read(jobs: list[str]) -> None:
        for job in jobs:
            r = await admin.get(f"/admin/api/jobs/{job}")
            assert r.status_code == 200, r.text
            records[job] = r.json()

    await asyncio.gather(*(read(p.jobs) for p in people))
    return records


async def stream(data: Path) -> list[Event]:
    """The workshop's whole event stream, oldest first."""
    url = running_redis_url(data)
    assert url is not None, "the workshop's Redis does not answer"
    redis = connect(url)
    try:
        log = EventLog(redis, Keys(Settings().key_prefix))
        events: list[Event] = []
        while batch := await log.read(events[-1].id if events else "0-0"):
            events.extend(batch)
        return events
    finally:
        await redis.aclose()


async def fetch_outputs(people: list[Participant], records: dict[str, dict[str, Any]]) -> None:
    """Each page shows its images (GET /<user>/api/view): the stored bytes, all pages at once."""

    async def show(p: Participant) -> None:
        for job in p.jobs:
            out = records[job]["outputs"][0]
            params = {"filename": out["filename"], "subfolder": out["subfolder"], "type": "output"}
            r = await p.http.get(f"/{p.name}/api/view", params=params)
            assert r.status_code == 200 and len(r.content) == out["size"], (job, r.status_code)

    await asyncio.gather(*(show(p) for p in people))


def assert_each_ran_once(burst: Burst) -> None:
    people, records, events = burst.people, burst.records, burst.events
    jobs = [job for p in people for job in p.jobs]
    assert len(set(jobs)) == USERS * JOBS
    claimed = Counter(str(e.job) for e in events if e.type is EventType.JOB_CLAIMED)
    completed = Counter(str(e.job) for e in events if e.type is EventType.JOB_COMPLETED)
    assert claimed == completed == Counter(jobs)
    for p in people:
        successes = Counter(f.job for f in p.got("execution_success"))
        assert successes == Counter(p.jobs), p.name
        for job in p.jobs:
            assert ran_once(records[job]) == ("completed", 1, p.name, ONCE), job


ONCE = [("queued", "submitted"), ("running", "claimed"), ("completed", "finished")]


def ran_once(record: dict[str, Any]) -> tuple[str, int, str, list[tuple[str, str]]]:
    steps = [(t["to"], t["reason"]) for t in record["timeline"]]
    return record["status"], record["attempts"], record["user"], steps


def assert_outputs_in_own_folders(data: Path, records: dict[str, dict[str, Any]]) -> None:
    """One file per job, in `DATA/outputs/<its user>/`, named after its own prompt; and no
    other file in any participant's output folder."""
    expected: set[Path] = set()
    for job, record in records.items():
        (out,) = record["outputs"]
        user = UserId(record["user"])
        path = data / "outputs" / user / out["subfolder"] / out["filename"]
        assert path.is_file(), (job, path)
        assert path.name.startswith(f"{user}-"), (job, path.name)
        expected.add(path)
    stored = {p for p in (data / "outputs").rglob("*") if p.is_file()}
    assert stored == expected


def print_figures(
    up: Up, burst: Burst, claims: list[Event], memory: RssSampler, answers: Answers
) -> None:
    """Socket latency: the time the page's socket read the frame (this process's wall clock)
    minus the time the queue manager took the worker's report in (the job record's
    started_at / finished_at: its wall clock on the same machine, read as the report arrived,
    before the report's Redis script ran)."""
    started, done = [], []
    for p in burst.people:
        for f in p.got("execution_start"):
            started.append(f.at - burst.records[f.job]["started_at"])
        for f in p.got("execution_success"):
            done.append(f.at - burst.records[f.job]["finished_at"])
    cut = rounds([str(e.user) for e in claims])
    per_worker = Counter(str(e.worker) for e in claims)
    print(
        f"\nburst {USERS} x {JOBS} through {WORKERS} workers (comfy-workshop up, simulators):\n"
        f"  all {len(burst.records)} completed once; {len(answers.seen)} HTTP requests, no 5xx;"
        f" claims per worker {dict(sorted(per_worker.items()))}\n"
        f"  strict round-robin: every claim as the replay rules; {len(cut)} rounds of "
        f"{sorted({len(r) for r in cut})} users\n"
        f"  wall: up {up.seconds:.1f} s; {burst.laps}\n"
        f"  queue manager RSS: before {mib(memory.before)}, peak {mib(memory.peak)}, "
        f"after {mib(memory.after)}\n"
        f"  worker report -> page socket, execution_start: {spread(started)}\n"
        f"  worker report -> page socket, execution_success: {spread(done)}"
    )


# -- the replay that rules on fairness, itself checked on streams made up for the purpose ----


def made_up(*steps: str) -> list[Event]:
    """`q u1 a` queues job a for user u1 (seq in order of queueing), `c u1 a` claims it,
    `d u1 a` completes it. Each claim is ruled on against what was waiting and running at
    that moment, so one wrong claim is one finding, whatever follows."""
    kinds = {"q": EventType.JOB_QUEUED, "c": EventType.JOB_CLAIMED, "d": EventType.JOB_COMPLETED}
    events, seq = [], 0
    for n, step in enumerate(steps):
        kind, user, job = step.split()
        seq += kind == "q"
        data: dict[str, JsonValue] = {"seq": seq, "lane": "normal"} if kind == "q" else {}
        events.append(Event(f"{n}-0", kinds[kind], 0.0, JobId(job), UserId(user), data=data))
    return events


QUEUED = ("q u1 a1", "q u1 a2", "q u2 b1", "q u2 b2", "q u3 c1")


@pytest.mark.parametrize(
    ("claims", "max_running", "unfair"),
    [
        # user by user, each user's own jobs in order
        (("c u1 a1", "d u1 a1", "c u2 b1", "c u3 c1", "c u1 a2", "c u2 b2"), -1, 0),
        # a second job for u1 while u2 and u3 still wait for their first
        (("c u1 a1", "d u1 a1", "c u1 a2", "c u2 b1", "c u3 c1", "c u2 b2"), -1, 1),
        # u2's second job before their first
        (("c u1 a1", "c u2 b2", "c u3 c1", "c u1 a2", "c u2 b1"), -1, 1),
        # newcomers first, in the order they came: u3 before u2 is wrong
        (("c u1 a1", "c u3 c1", "c u2 b1", "c u1 a2", "c u2 b2"), -1, 1),
        # u1 still runs a1 at their limit of one: u2 and u3 may go, then u1 once a1 is done
        (("c u1 a1", "c u2 b1", "c u3 c1", "d u1 a1", "c u1 a2"), 1, 0),
        # ... but not before a1 is done
        (("c u1 a1", "c u2 b1", "c u3 c1", "c u1 a2", "d u1 a1"), 1, 1),
    ],
)
def test_the_replay_flags_every_claim_that_breaks_strict_round_robin(
    claims: tuple[str, ...], max_running: int, unfair: int
) -> None:
    assert len(unfair_claims(made_up(*QUEUED, *claims), max_running)) == unfair
