"""A rehearsal from start to clean-up: reach the workshop, find or make the accounts, choose the
workflow, drive the participants (over the protocol, and M of them in Chromium) while sampling
the queue manager's memory, read the instructor's job records, remove the accounts it made
(also when stopped or failing), and gather the `Results` the report is made of."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx

from queue_manager.cli.roster import read_credentials
from queue_manager.core.accounts import Role
from queue_manager.rehearsal.client import (
    Instructor,
    Login,
    WorkshopError,
    check_reachable,
    log_in,
    new_client,
)
from queue_manager.rehearsal.display import Board
from queue_manager.rehearsal.participant import (
    Participant,
    ParticipantLost,
    Plan,
    SocketParticipant,
)
from queue_manager.rehearsal.prompts import (
    RehearsalWorkflow,
    WorkflowProblem,
    default_workflow,
    read_workflow,
)
from queue_manager.rehearsal.report import Results
from queue_manager.rehearsal.stats import Busy, JobRun, Problem, gpu_busy, memory

ACCOUNT_PREFIX = "rehearsal"
MEMORY_EVERY = 1.0  # seconds between /metrics samples
AT_ONCE = 8  # admin calls in flight at once (making accounts, reading records)
T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    url: str
    users: int
    jobs_per_user: int
    browsers: int
    workflow: Path | None
    credentials: Path
    credentials_given: bool  # --credentials named the file: log in with its participants
    instructor: Login | None  # --instructor/--password
    timeout: float
    keep_accounts: bool


@dataclass
class Accounts:
    """Who takes part, and what the rehearsal made (to remove)."""

    instructor: Instructor | None
    logins: list[Login]
    made: list[str]
    source: str


async def rehearse(o: Options, board_for: Callable[[list[str]], Board],
                   stop: asyncio.Event) -> Results:  # fmt: skip
    """The whole rehearsal; `stop` set (Ctrl-C) ends the driving early, the clean-up and the
    report still happen."""
    await check_reachable(o.url)
    if o.browsers:
        from queue_manager.rehearsal.browser import check_browser

        check_browser()
    async with AsyncExitStack() as stack:
        instructor = await _instructor(o, stack)
        accounts = Accounts(instructor, [], [], "")
        try:
            await _until(stop, _find_accounts(o, accounts))
            if stop.is_set():
                raise WorkshopError("stopped before the participants started")
            return await _rehearse(o, accounts, board_for, stop)
        finally:
            await _remove_made(o, accounts)


async def _rehearse(o: Options, accounts: Accounts, board_for: Callable[[list[str]], Board],
                    stop: asyncio.Event) -> Results:  # fmt: skip
    workflow = await _workflow(o, accounts)
    users = [login.name for login in accounts.logins]
    instructor = accounts.instructor
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    with board_for(users) as board:
        board.line(f"{len(users)} participants ({accounts.source}), workflow: {workflow.name}")
        async with _sampling(instructor, samples, started):
            jobs, problems = await _drive(o, accounts.logins, workflow, board, stop)
    wall = time.monotonic() - started
    notes: list[str] = []
    busy: list[Busy] = []
    if instructor is None:
        notes.append(
            "GPU busy time, the server's run order and memory need the instructor's login "
            "(an instructor row in the credentials file, or --instructor NAME)"
        )
    else:
        jobs = await _with_records(instructor, jobs)
        busy = _busy(jobs, await instructor.workers())
        if not samples:
            notes.append("memory: /metrics gave no process_resident_memory_bytes")
    made = f"{len(accounts.made)} made ({_span(accounts.made)})" if accounts.made else ""
    return Results(
        url=o.url, users=tuple(users), jobs_per_user=o.jobs_per_user, browsers=o.browsers,
        workflow=workflow.name, wall=wall, jobs=tuple(jobs),
        problems=tuple(problems) + tuple(j.problem for j in jobs if j.problem),
        busy=tuple(busy), memory=memory(samples), notes=tuple(notes),
        accounts=_accounts_line(o, accounts, made), interrupted=stop.is_set(),
    )  # fmt: skip


def _accounts_line(o: Options, accounts: Accounts, made: str) -> str:
    if not made:
        return f"logged in with {accounts.source}"
    if o.keep_accounts:
        return f"{made}, kept (--keep-accounts): remove them with the dashboard or the CLI"
    return f"{made}, removed with their files at the end"


def _span(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"


# -- accounts --------------------------------------------------------------------------------


async def _instructor(o: Options, stack: AsyncExitStack) -> Instructor | None:
    login = o.instructor or _instructor_in_file(o.credentials)
    if login is None:
        return None
    client = await stack.enter_async_context(new_client(o.url))
    try:
        await log_in(client, login)
    except WorkshopError as exc:
        where = "--instructor" if o.instructor else f"the instructor row of {o.credentials}"
        raise WorkshopError(f"{exc} ({where})") from None
    instructor = Instructor(client, login.name)
    await instructor.check_role()
    return instructor


def _instructor_in_file(path: Path) -> Login | None:
    rows = read_credentials(path) if path.is_file() else {}
    found = [Login(n, p) for n, (role, p) in rows.items() if role == Role.INSTRUCTOR.value]
    return found[0] if found else None


async def _find_accounts(o: Options, accounts: Accounts) -> None:
    """The participants: the file's (when --credentials names it, or nobody can make accounts),
    else accounts made for the rehearsal."""
    if o.credentials_given or accounts.instructor is None:
        accounts.logins = _participants_in_file(o)
        accounts.source = f"the accounts in {o.credentials}"
        return
    tag = secrets.token_hex(2)
    names = [f"{ACCOUNT_PREFIX}-{tag}-{i:03d}" for i in range(1, o.users + 1)]
    accounts.made.extend(names)  # before asking: a stop mid-way still removes each of them
    instructor = accounts.instructor
    accounts.logins = await _gathered(instructor.make_account(n) for n in names)
    accounts.source = "made for the rehearsal"


def _participants_in_file(o: Options) -> list[Login]:
    if not o.credentials.is_file():
        raise WorkshopError(
            f"no credentials file at {o.credentials}: give --credentials FILE (user,role,"
            "password), --data DIR of the workshop, or an instructor login (--instructor NAME) "
            "to make accounts for the rehearsal"
        )
    rows = read_credentials(o.credentials)
    found = [Login(n, p) for n, (role, p) in rows.items() if role == Role.PARTICIPANT.value]
    if len(found) < o.users:
        raise WorkshopError(
            f"{o.credentials} lists {len(found)} participants, fewer than --users {o.users}: "
            "give a smaller --users, a longer file, or an instructor login to make accounts"
        )
    return found[: o.users]


async def _remove_made(o: Options, accounts: Accounts) -> None:
    if not accounts.made or o.keep_accounts or accounts.instructor is None:
        return
    instructor = accounts.instructor
    await _gathered(instructor.remove_account(n) for n in accounts.made)


# -- the workflow ----------------------------------------------------------------------------


async def _workflow(o: Options, accounts: Accounts) -> RehearsalWorkflow:
    """--workflow FILE, else the instructor's first published workflow, else the built-in."""
    catalogue = await _catalogue(o.url, accounts.logins[0])
    try:
        if o.workflow is not None:
            try:
                raw = o.workflow.read_bytes()
            except OSError as exc:
                raise WorkshopError(
                    f"cannot read --workflow {o.workflow}: {exc.strerror}"
                ) from None
            return read_workflow(o.workflow.name, raw, catalogue)
        published = await accounts.instructor.first_workflow() if accounts.instructor else None
        if published is not None:
            name, raw = published
            return replace(read_workflow(name, raw, catalogue), name=f"{name} (published)")
        return default_workflow(catalogue)
    except WorkflowProblem as exc:
        raise WorkshopError(str(exc)) from None


async def _catalogue(base: str, login: Login) -> dict[str, Any]:
    """The node definitions the participants' page gets (the GPUs' own)."""
    async with new_client(base) as client:
        await log_in(client, login)
        answer = await client.get(f"/{login.name}/api/object_info")
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found


# -- driving ---------------------------------------------------------------------------------


async def _drive(o: Options, logins: list[Login], workflow: RehearsalWorkflow, board: Board,
                 stop: asyncio.Event) -> tuple[list[JobRun], list[Problem]]:  # fmt: skip
    """Every participant at once (the first --browsers of them in Chromium) until all are
    done or `stop`; the jobs as far as they got."""
    plan = Plan(o.url, o.jobs_per_user, workflow, o.timeout)
    rng = random.Random()
    async with contextlib.AsyncExitStack() as stack:
        people: list[Participant] = []
        runs: list[Awaitable[list[JobRun]]] = []
        if o.browsers:
            from queue_manager.rehearsal.browser import BrowserParticipant, chromium

            browser = await stack.enter_async_context(chromium())
            for login in logins[: o.browsers]:
                person = BrowserParticipant(plan, login, rng, board.say)
                board.via(person.user, "browser")
                people.append(person)
                runs.append(person.run(browser))
        for login in logins[o.browsers :]:
            socket_person = SocketParticipant(plan, login, rng, board.say)
            people.append(socket_person)
            runs.append(socket_person.run())
        tasks = [
            asyncio.create_task(_one(p.user, run)) for p, run in zip(people, runs, strict=True)
        ]
        with contextlib.suppress(asyncio.CancelledError):
            await _until(stop, asyncio.gather(*tasks))
        for task in tasks:
            task.cancel()
        ended = await asyncio.gather(*tasks, return_exceptions=True)
    jobs = [j for p in people for _, j in sorted(p.jobs.items())]
    problems = [x for p in people for x in p.problems]
    problems += [x for found in ended if isinstance(found, list) for x in found]
    return jobs, problems


async def _one(user: str, run: Awaitable[list[JobRun]]) -> list[Problem]:
    """Run one participant; what stopped them early becomes a problem of theirs."""
    try:
        await run
    except WorkshopError as exc:
        return [Problem("login", user, str(exc))]
    except ParticipantLost as exc:
        return [Problem("socket", user, str(exc))]
    except (httpx.HTTPError, OSError) as exc:
        return [Problem("network", user, f"{type(exc).__name__}: {exc}")]
    except Exception as exc:  # a participant's loop boundary: the others go on
        return [Problem(_kind(exc), user, f"{type(exc).__name__}: {exc}"[:300])]
    return []


def _kind(exc: Exception) -> str:
    module = type(exc).__module__
    return "browser" if module.startswith("playwright") else "participant"


async def _until(stop: asyncio.Event, work: Awaitable[T]) -> None:
    """Wait for `work`, or for `stop` (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.done() and not task.cancelled():
        task.result()  # raise what went wrong


async def _gathered(calls: Any) -> list[T]:
    """Admin calls, AT_ONCE at a time, in order."""
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


# -- measuring -------------------------------------------------------------------------------


@asynccontextmanager
async def _sampling(instructor: Instructor | None, samples: list[tuple[float, float]],
                    started: float) -> AsyncIterator[None]:  # fmt: skip
    """The queue manager's resident memory, every MEMORY_EVERY seconds and once at the end."""

    async def sample() -> None:
        if instructor is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            found = await instructor.resident_memory()
            if found is not None:
                samples.append((time.monotonic() - started, found))

    async def loop() -> None:
        while True:
            await sample()
            await asyncio.sleep(MEMORY_EVERY)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sample()


async def _with_records(instructor: Instructor, jobs: list[JobRun]) -> list[JobRun]:
    """Jobs with the server's times and worker from the instructor's records."""

    async def one(job: JobRun) -> JobRun:
        if job.prompt_id is None:
            return job
        try:
            record = await instructor.job(job.prompt_id)
        except httpx.HTTPError:
            record = None
        if record is None:
            return job
        return replace(
            job,
            queued=record.get("created_at"),
            # when its GPU began it (a job is handed to a GPU early, before its turn there)
            started=record.get("started_at") or record.get("claimed_at"),
            finished=record.get("finished_at"),
            worker=record.get("worker"),
        )

    return await _gathered(one(j) for j in jobs)


def _busy(jobs: list[JobRun], workers: list[str]) -> list[Busy]:
    timed = [j for j in jobs if j.queued is not None and j.finished is not None]
    if not timed:
        return []
    start = min(j.queued or 0.0 for j in timed)
    end = max(j.finished or 0.0 for j in timed)
    return gpu_busy(jobs, workers, start, end)
