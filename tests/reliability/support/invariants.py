"""The checks every fault test ends with: what must hold of the room after any fault, whatever
was killed. Each check returns the problems it found (sentences naming the job, user and
file), so a failing test lists every broken promise at once; `assert_room_consistent` runs them
all and fails with that list.

What each check proves:

* `ended_once` (records): the job has exactly one terminal timeline transition (notes of a
  late result discarded, which leave the status as it was, are not transitions), the last one,
  and it is the state the test expected (COMPLETED for a good prompt, FAILED for one meant to
  fail, CANCELLED when cancelled); its attempts stay within the bound. A job completed twice by
  two workers, or failed and then completed, shows two terminal entries.
* `left_nowhere` (Redis): an ended job is in no lane, not at the front, holds no lease: nothing
  could hand it out again. The per-user queued/running counters agree with the job records (a
  counter left at 1 by a killed worker blocks that participant's next Run forever).
* `output_problems` (disk): a completed job's outputs all exist, each once, in its own user's
  folder, and no other file carries its `filename_prefix` there (a retried attempt that
  stored a second image shows up as an extra file).
* `stray_files` (disk): every file below the per-user roots lies in some user's folder, none
  at a root's top level, no symbolic link anywhere, and no file of one user's job sits in
  another user's folder.
* `ParticipantPage.problems` (sockets.py): the page's socket came back by itself with the same
  clientId (no reload), and the page learnt each of its jobs' ends: on the socket when it was
  connected at the end, else from `/api/jobs/{id}` as the frontend re-reads it; its latest
  `status` frame shows what is really left.

The room is read the same way whether the test built it in-process (`RoomView(redis, prefix,
data)`) or started it as `comfy-workshop up` (`async with workshop_room(data)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from redis.asyncio import Redis

from queue_manager.cli.target import running_redis_url
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import LANES, Job, JobStatus
from queue_manager.store.connection import connect
from queue_manager.store.jobs import job_from_fields
from queue_manager.store.keys import Keys
from tests.reliability.support.sockets import ParticipantPage

__all__ = [
    "USER_ROOTS",
    "Accepted",
    "ParticipantPage",
    "RoomView",
    "assert_room_consistent",
    "ended_once",
    "left_nowhere",
    "output_prefixes",
    "output_problems",
    "room_problems",
    "stray_files",
    "wait_all_ended",
    "workshop_room",
]

# The folders below DATA that hold one folder per user, and nothing else.
USER_ROOTS: tuple[str, ...] = ("outputs", "inputs", "temp", "userdata")
UP_KEY_PREFIX = "cw:"  # `comfy-workshop up` keeps the settings' default unless CW_KEY_PREFIX


@dataclass(frozen=True)
class Accepted:
    """A job the queue manager accepted (it answered with its id), and how it must end.

    `outputs`: how many output files (type "output") the job must have once ended; None when
    any number will do (a job cancelled mid-run may or may not have saved one).
    `max_attempts`: the most attempts it may have taken (a job whose worker died runs twice).
    `client_id`: the page that submitted it (its socket must learn the end)."""

    job_id: JobId
    user: UserId
    expected: JobStatus = JobStatus.COMPLETED
    outputs: int | None = 1
    max_attempts: int = 3
    client_id: str | None = None


@dataclass(frozen=True)
class RoomView:
    """Where a room's state lies: its Redis (with the key prefix) and its data folder."""

    redis: Redis
    prefix: str
    data: Path

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    async def job(self, job_id: JobId) -> Job | None:
        """The job as stored (with its timeline), None if there is no such job."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.job(job_id))
            pipe.lrange(self.keys.timeline(job_id), 0, -1)
            fields, timeline = await pipe.execute()
        return job_from_fields(fields, timeline) if fields else None

    async def user_jobs(self, user: UserId) -> list[Job]:
        ids = await self.redis.zrange(self.keys.user_jobs(user), 0, -1)
        found = [await self.job(JobId(str(i))) for i in ids]
        return [j for j in found if j is not None]


@contextlib.asynccontextmanager
async def workshop_room(data: Path, prefix: str = UP_KEY_PREFIX) -> AsyncIterator[RoomView]:
    """The room of a workshop started as `comfy-workshop up --data DATA`: its private Redis is
    found the way operator commands find it (DATA/redis/redis.conf, and asked whether it
    serves that folder)."""
    url = await asyncio.to_thread(running_redis_url, data)
    assert url is not None, f"no workshop Redis answers for {data}"
    folder = await asyncio.to_thread(data.resolve)
    redis = connect(url, retries=2)
    try:
        yield RoomView(redis, prefix, folder)
    finally:
        await redis.aclose()


# -- (a) every accepted job ended exactly once, in its right state -----------------------------


def ended_once(job: Job | None, accepted: Accepted) -> list[str]:
    """Problems with how `job` ended (pure: the record only)."""
    name = f"job {accepted.job_id} of {accepted.user}"
    if job is None:
        return [f"{name} was accepted but is not stored"]
    problems = []
    if job.user != accepted.user:
        problems.append(f"{name} is stored as {job.user}'s")
    if job.status is not accepted.expected:
        problems.append(f"{name} is {job.status}, expected {accepted.expected}")
    # A note (a late result discarded: the status stays, `source` == `to`) is no transition.
    moves = [e for e in job.timeline if e.source is not e.to]
    terminal = [i for i, e in enumerate(moves) if e.to.is_final]
    if len(terminal) != 1:
        ends = [str(moves[i].to) for i in terminal]
        problems.append(f"{name} has {len(terminal)} terminal timeline entries {ends}")
    elif terminal[0] != len(moves) - 1:
        problems.append(f"{name} moved on after it ended: {moves[terminal[0] + 1 :]}")
    if job.attempts > accepted.max_attempts:
        problems.append(f"{name} took {job.attempts} attempts (at most {accepted.max_attempts})")
    if accepted.expected is JobStatus.COMPLETED and job.attempts < 1:
        problems.append(f"{name} completed without an attempt")
    if job.status.is_final and job.finished_at is None:
        problems.append(f"{name} ended without a finish time")
    return problems


async def left_nowhere(room: RoomView, job: Job) -> list[str]:
    """Problems if an ended `job` could still be handed out: in a lane, at the front, leased."""
    if not job.status.is_final:
        return []
    k = room.keys
    async with room.redis.pipeline(transaction=False) as pipe:
        for lane in LANES:
            pipe.zscore(f"{room.prefix}q:{lane.value}:u:{job.user}", job.id)
        pipe.zscore(f"{room.prefix}front", job.id)
        pipe.zscore(k.leases, job.id)
        found = await pipe.execute()
    places = [*(f"lane {lane.value}" for lane in LANES), "the front", "the leases"]
    return [
        f"job {job.id} of {job.user} ended ({job.status}) but is still in {where}"
        for where, score in zip(places, found, strict=True)
        if score is not None
    ]


async def counter_problems(room: RoomView, user: UserId) -> list[str]:
    """The user's queued/running counters against their job records."""
    jobs = await room.user_jobs(user)
    queued = sum(j.status is JobStatus.QUEUED for j in jobs)
    running = sum(j.status is JobStatus.RUNNING for j in jobs)
    counted = [await room.redis.hget(h, user) for h in (room.keys.queued, room.keys.running)]
    said = tuple(int(c or 0) for c in counted)
    if said != (queued, running):
        return [
            f"{user}'s counters say {said[0]} queued, {said[1]} running; "
            f"the records say {queued} queued, {running} running"
        ]
    return []


# -- (b) exactly one set of output files per completed job ----------------------------------


def output_prefixes(job: Job) -> set[str]:
    """The `filename_prefix` of every saving node of the job's prompt ("t/e2e")."""
    found = set()
    for node in job.prompt.values():
        value = node.get("inputs", {}).get("filename_prefix")
        if isinstance(value, str) and value:
            found.add(value)
    return found


def _listed(job: Job) -> list[PurePosixPath]:
    """The job's recorded output files (type "output"), relative to its user's folder."""
    paths = []
    for o in job.outputs:
        if o.get("type", "output") == "output":
            paths.append(PurePosixPath(str(o.get("subfolder") or ""), str(o.get("filename"))))
    return paths


def _with_prefix(folder: Path, prefix: str) -> set[PurePosixPath]:
    """Files in a user's outputs folder that SaveImage-style naming gives `prefix`
    (`<prefix>_00001_.png`, and collision names `<prefix>_00001__1.png`)."""
    rel = PurePosixPath(prefix)
    where = folder / rel.parent
    if not where.is_dir():
        return set()
    return {
        rel.parent / p.name
        for p in where.iterdir()
        if p.name.startswith(rel.name + "_") and not p.name.startswith(".")
    }


def output_problems(data: Path, ended: Sequence[tuple[Accepted, Job]]) -> list[str]:
    """Each job's listed outputs exist once, the expected number of them, and the files of its
    prefix(es) in its user's folder are exactly the ones listed (per user and prefix, over all
    the jobs that share it)."""
    problems = []
    groups: dict[tuple[UserId, str], set[PurePosixPath]] = {}
    for accepted, job in ended:
        listed = _listed(job)
        name = f"job {job.id} of {job.user}"
        if len(set(listed)) != len(listed):
            problems.append(f"{name} lists an output twice: {[str(p) for p in listed]}")
        if accepted.outputs is not None and len(listed) != accepted.outputs:
            problems.append(f"{name} has {len(listed)} outputs, expected {accepted.outputs}")
        for rel in listed:
            path = data / "outputs" / job.user / rel
            if path.is_symlink() or not path.is_file():
                problems.append(f"{name}'s output {rel} is not a file in {job.user}'s folder")
        for prefix in output_prefixes(job):
            groups.setdefault((job.user, prefix), set()).update(listed)
    for (user, prefix), listed_set in sorted(groups.items()):
        on_disk = _with_prefix(data / "outputs" / user, prefix)
        mine = {p for p in listed_set if str(p).startswith(prefix + "_")}
        if extra := sorted(map(str, on_disk - mine)):
            problems.append(f"{user}'s folder holds files of prefix {prefix} no job lists: {extra}")
    return problems


# -- (c) no file outside its user's folder --------------------------------------------------


def stray_files(
    data: Path,
    users: Collection[UserId] | None = None,
    jobs: Iterable[Job] = (),
) -> list[str]:
    """Walk every per-user root: no symbolic link, no file at a root's top level, no folder of
    an unknown user (when `users` is given), and no file of one user's job (by its prefix) in
    another user's folder."""
    problems = []
    owners: dict[str, set[UserId]] = {}
    for job in jobs:
        for prefix in output_prefixes(job):
            owners.setdefault(prefix, set()).add(job.user)
    for root_name in USER_ROOTS:
        root = data / root_name
        if not root.exists():
            continue
        for here, dirs, files in os.walk(root, followlinks=False):
            for entry in (*dirs, *files):
                path = Path(here) / entry
                rel = path.relative_to(root)
                if path.is_symlink():
                    problems.append(f"symbolic link {root_name}/{rel} -> {os.readlink(path)}")
                elif len(rel.parts) == 1 and not path.is_dir():
                    problems.append(f"file {root_name}/{rel} outside every user's folder")
                elif len(rel.parts) == 1 and users is not None and entry not in users:
                    problems.append(f"folder {root_name}/{rel} of no known user")
                elif root_name == "outputs" and len(rel.parts) > 1 and path.is_file():
                    problems += _foreign(rel, owners)
    return problems


def _foreign(rel: Path, owners: dict[str, set[UserId]]) -> list[str]:
    """A file in user U's outputs whose name carries only other users' job prefixes."""
    user, inside = rel.parts[0], PurePosixPath(*rel.parts[1:])
    claimants: set[UserId] = set()
    for prefix, who in owners.items():
        p = PurePosixPath(prefix)
        if inside.parent == p.parent and inside.name.startswith(p.name + "_"):
            claimants |= who
    if claimants and user not in claimants:
        return [f"file outputs/{rel} of {sorted(claimants)}'s job lies in {user}'s folder"]
    return []


# -- all together ---------------------------------------------------------------------------


async def wait_all_ended(room: RoomView, accepted: Sequence[Accepted], timeout: float) -> None:
    """Wait (up to `timeout`) until every accepted job has a final status; returns either way:
    the checks then say which did not end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for a in accepted:
        while loop.time() < deadline:
            job = await room.job(a.job_id)
            if job is not None and job.status.is_final:
                break
            await asyncio.sleep(0.05)


async def room_problems(
    room: RoomView,
    accepted: Sequence[Accepted],
    pages: Sequence[ParticipantPage] = (),
    users: Collection[UserId] | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Every problem the checks find, once the accepted jobs ended (or `timeout` passed)."""
    await wait_all_ended(room, accepted, timeout)
    problems: list[str] = []
    ended: list[tuple[Accepted, Job]] = []
    for a in accepted:
        job = await room.job(a.job_id)
        problems += ended_once(job, a)
        if job is not None:
            problems += await left_nowhere(room, job)
            ended.append((a, job))
    for user in sorted({a.user for a in accepted}):
        problems += await counter_problems(room, user)
    problems += await asyncio.to_thread(output_problems, room.data, ended)
    jobs = [job for _, job in ended]
    problems += await asyncio.to_thread(stray_files, room.data, users, jobs)
    for page in pages:
        mine = [(a, j) for a, j in ended if a.user == page.user and a.client_id == page.client_id]
        problems += await page.problems(mine, await _live_count(room, page.user), timeout)
    return problems


async def _live_count(room: RoomView, user: UserId) -> int:
    return sum(not j.status.is_final for j in await room.user_jobs(user))


async def assert_room_consistent(
    room: RoomView,
    accepted: Sequence[Accepted],
    pages: Sequence[ParticipantPage] = (),
    users: Collection[UserId] | None = None,
    timeout: float = 30.0,
) -> None:
    """Fail with every broken promise at once: jobs ended once and right, nothing left to hand
    out, counters true, one set of files each, none outside its user's folder, and every
    page's socket recovered and told of its jobs' ends."""
    assert accepted, "no job was accepted: the test checked nothing"
    problems = await room_problems(room, accepted, pages, users, timeout)
    assert not problems, "the room is inconsistent:\n  " + "\n  ".join(problems)
