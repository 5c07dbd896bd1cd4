"""The fault suite's checks against rooms broken on purpose: a check that cannot fail would let
every fault test pass while proving nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer, free_port
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Job, JobStatus, Lane, TimelineEntry
from queue_manager.service.queue import QueueService
from queue_manager.store.accounts import Role
from queue_manager.store.keys import Keys
from tests.reliability.support.fault_room import PASSWORD, run
from tests.reliability.support.invariants import (
    Accepted,
    ParticipantPage,
    RoomView,
    counter_problems,
    ended_once,
    left_nowhere,
    output_problems,
    stray_files,
)
from tests.reliability.support.sockets import Epoch, Frame
from tests.support.graphs import SAVE
from tests.support.servers import serve
from tests.support.settings import make_settings
from tests.support.waiting import until

ALICE, BOB = UserId("user001"), UserId("user002")
Q, R, C, F = JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED


def job(
    job_id: str = "j1",
    user: UserId = ALICE,
    path: tuple[JobStatus, ...] = (Q, R, C),
    outputs: tuple[str, ...] = ("t/e2e_00001_.png",),
    attempts: int = 1,
) -> Job:
    """A stored job that went through `path`, listing `outputs` (subfolder/filename)."""
    timeline = [TimelineEntry(at=float(i), to=s, reason="test") for i, s in enumerate(path)]
    listed = [
        {"filename": o.rpartition("/")[2], "subfolder": o.rpartition("/")[0], "type": "output"}
        for o in outputs
    ]
    return Job(
        id=JobId(job_id),
        user=user,
        lane=Lane.NORMAL,
        status=path[-1],
        seq=1,
        attempts=attempts,
        prompt=SAVE,
        created_at=0.0,
        finished_at=10.0 if path[-1].is_final else None,
        worker=WorkerId("gpu1"),
        outputs=listed,
        timeline=timeline,
    )


def files(data: Path, *paths: str) -> None:
    for p in paths:
        (data / p).parent.mkdir(parents=True, exist_ok=True)
        (data / p).write_bytes(b"png")


# -- (a) ended once, in the right state -----------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "accepted", "complaint"),
    [
        (job(path=(Q, R, C, R, C)), Accepted(JobId("j1"), ALICE), "2 terminal"),
        (job(path=(Q, R, F, C)), Accepted(JobId("j1"), ALICE), "2 terminal"),
        (job(path=(Q, R, C, Q)), Accepted(JobId("j1"), ALICE), "is queued"),
        (job(path=(Q, R, F)), Accepted(JobId("j1"), ALICE), "expected completed"),
        (job(), Accepted(JobId("j1"), ALICE, expected=F), "expected failed"),
        (job(path=(Q, R)), Accepted(JobId("j1"), ALICE), "0 terminal"),
        (job(attempts=4), Accepted(JobId("j1"), ALICE, max_attempts=3), "4 attempts"),
        (job(user=BOB), Accepted(JobId("j1"), ALICE), "stored as user002's"),
        (None, Accepted(JobId("j1"), ALICE), "not stored"),
    ],
)
def test_a_job_that_did_not_end_exactly_once_and_right_is_caught(
    stored: Job | None, accepted: Accepted, complaint: str
) -> None:
    problems = ended_once(stored, accepted)
    assert any(complaint in p for p in problems), problems


def test_a_job_that_ended_once_and_right_passes() -> None:
    assert ended_once(job(path=(Q, R, Q, R, C), attempts=2), Accepted(JobId("j1"), ALICE)) == []


# -- (b) one set of output files ------------------------------------------------------------


def test_a_duplicate_file_from_a_retried_attempt_is_caught(tmp_path: Path) -> None:
    files(tmp_path, "outputs/user001/t/e2e_00001_.png", "outputs/user001/t/e2e_00002_.png")
    problems = output_problems(tmp_path, [(Accepted(JobId("j1"), ALICE), job())])
    assert problems == [
        "user001's folder holds files of prefix t/e2e no job lists: ['t/e2e_00002_.png']"
    ]


def test_a_missing_file_a_double_listing_and_a_wrong_count_are_caught(tmp_path: Path) -> None:
    twice = job(outputs=("t/e2e_00001_.png", "t/e2e_00001_.png"))
    problems = output_problems(tmp_path, [(Accepted(JobId("j1"), ALICE), twice)])
    assert len(problems) == 4, problems  # listed twice, 2 != 1, and missing (twice)


def test_one_set_of_files_per_job_passes_even_when_jobs_share_a_prefix(tmp_path: Path) -> None:
    files(tmp_path, "outputs/user001/t/e2e_00001_.png", "outputs/user001/t/e2e_00002_.png")
    ended = [
        (Accepted(JobId("j1"), ALICE), job("j1")),
        (Accepted(JobId("j2"), ALICE), job("j2", outputs=("t/e2e_00002_.png",))),
    ]
    assert output_problems(tmp_path, ended) == []


# -- (c) no file outside its user's folder --------------------------------------------------


def test_a_file_in_another_users_folder_is_caught(tmp_path: Path) -> None:
    files(tmp_path, "outputs/user002/t/e2e_00001_.png")
    problems = stray_files(tmp_path, jobs=[job()])
    assert problems == [
        "file outputs/user002/t/e2e_00001_.png of ['user001']'s job lies in user002's folder"
    ]


def test_top_level_files_unknown_folders_and_links_are_caught(tmp_path: Path) -> None:
    files(tmp_path, "outputs/loose.png", "inputs/stranger/a.png", "outputs/user001/ok.png")
    (tmp_path / "outputs/user001/escape").symlink_to("/etc")
    problems = stray_files(tmp_path, users={ALICE, BOB})
    assert sorted(problems) == [
        "file outputs/loose.png outside every user's folder",
        "folder inputs/stranger of no known user",
        "symbolic link outputs/user001/escape -> /etc",
    ]


def test_a_tidy_tree_passes(tmp_path: Path) -> None:
    files(tmp_path, "outputs/user001/t/e2e_00001_.png", "inputs/user002/a.png")
    files(tmp_path, "userdata/user001/workflows/a.json", "temp/user002/p.png")
    assert stray_files(tmp_path, users={ALICE, BOB}, jobs=[job()]) == []


# -- left where it could run again, counters ------------------------------------------------


async def test_an_ended_job_still_in_a_lane_or_leased_is_caught(redis: Redis, prefix: str) -> None:
    room = RoomView(redis, prefix, Path("unused"))
    await redis.zadd(f"{prefix}q:normal:u:user001", {"j1": 1})
    await redis.zadd(Keys(prefix).leases, {"j1": 99})
    assert await left_nowhere(room, job()) == [
        "job j1 of user001 ended (completed) but is still in lane normal",
        "job j1 of user001 ended (completed) but is still in the leases",
    ]
    assert await left_nowhere(room, job("j2")) == []


async def test_a_running_counter_left_behind_is_caught(redis: Redis, prefix: str) -> None:
    room = RoomView(redis, prefix, Path("unused"))
    assert await counter_problems(room, ALICE) == []
    await redis.hset(Keys(prefix).running, ALICE, 1)
    assert await counter_problems(room, ALICE) == [
        "user001's counters say 0 queued, 1 running; the records say 0 queued, 0 running"
    ]


# -- (d) the page's socket -----------------------------------------------------------------


def page(*frames: dict[str, Any], sid: str = "tab", closed: float | None = None) -> ParticipantPage:
    """A page whose one connection opened at t=1 and got `frames`."""
    p = ParticipantPage("http://unused", ALICE, "pw", client_id="tab")
    p.epochs.append(Epoch(1.0, sid, closed))
    p.frames.extend(Frame(2.0, 0, m) for m in frames)
    return p


def done(job_id: str) -> dict[str, Any]:
    return {"type": "executing", "data": {"node": None, "prompt_id": job_id}}


def success(job_id: str) -> dict[str, Any]:
    return {"type": "execution_success", "data": {"prompt_id": job_id}}


STATUS0 = {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}}
ENDED = [(Accepted(JobId("j1"), ALICE, client_id="tab"), job())]


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (page(STATUS0), "never told it ended"),
        (page(done("j1"), STATUS0), "no execution_success"),
        (page(success("j1"), success("j1"), done("j1"), STATUS0), "one end at most"),
        (page({"type": "execution_error", "data": {"prompt_id": "j1"}}, done("j1")), "which is"),
        (page(success("j1"), done("j1"), STATUS0, sid="other"), "not its own clientId"),
        (page(success("j1"), done("j1")), "status says None left"),
    ],
)
async def test_a_page_not_told_or_told_wrong_is_caught(
    broken: ParticipantPage, complaint: str
) -> None:
    problems = await broken.problems(ENDED, live=0, timeout=0.05)
    assert any(complaint in p for p in problems), problems


async def test_a_page_whose_socket_never_came_back_is_caught() -> None:
    problems = await page(closed=time.time()).problems(ENDED, live=0, timeout=0.05)
    assert problems == ["user001's page tab: the socket did not come back within 0.05s"]


async def test_a_page_told_its_jobs_end_passes() -> None:
    told = page(success("j1"), STATUS0, done("j1"))
    assert await told.problems(ENDED, live=0, timeout=0.05) == []


async def test_a_page_comes_back_with_its_client_id_and_learns_an_end_it_missed(
    redis: Redis, redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    """The queue manager goes away under an open page and comes back on the same address;
    meanwhile the page's job ended. The page reconnects by itself, as the same tab, and the
    check learns the end from `/api/jobs/{id}`, as the frontend does."""
    settings = make_settings(redis_server, prefix, data_dir=tmp_path / "data")
    port = free_port()
    first = create_app(settings)
    async with serve(first, port) as url:
        await first.state.accounts.add(ALICE, Role.PARTICIPANT, PASSWORD)
        page = await ParticipantPage(url, ALICE, PASSWORD).__aenter__()
        job_id = await page.submit(run("t/e2e"))  # no GPU: it waits
    try:
        await until(lambda: not page.connected, 10, "the socket closed")
        operator = QueueService(settings, redis)  # as an operator command acts on the room
        await operator.cancel(job_id, UserId("instructor"))  # while the page is away
        async with serve(create_app(settings), port):
            await until(page.until_connected, 20, "the socket back")
            accepted = Accepted(job_id, ALICE, JobStatus.CANCELLED, 0, client_id=page.client_id)
            stored = await RoomView(redis, prefix, tmp_path / "data").job(job_id)
            assert stored is not None and stored.finished_at is not None
            assert page.open_at(stored.finished_at) is None  # it learns from /api/jobs
            assert await page.problems([(accepted, stored)], live=0, timeout=20) == []
            wrong = Accepted(job_id, ALICE, client_id=page.client_id)  # "it completed"
            said = await page.problems([(wrong, stored)], live=0, timeout=1)
            assert said == [f"{page.user}'s page {page.client_id[:8]}: /api/jobs/{job_id} says "
                            "cancelled, expected completed"]  # fmt: skip
    finally:
        await page.__aexit__()
    assert [e.sid for e in page.epochs] == [page.client_id] * 2
