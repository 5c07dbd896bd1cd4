"""`comfy-workshop room export|archive|reset`, run as an operator runs them (a subprocess), on a
room with accounts, finished jobs in the private Redis and files on disk."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.cli.roster import read_credentials, write_credentials
from queue_manager.core.accounts import Role
from queue_manager.core.errors import JobNotFound
from queue_manager.core.ids import JobId, SessionId, UserId
from queue_manager.core.jobs import Lane
from queue_manager.service.accounts import Accounts, open_accounts
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from tests.support.cli import run_cli
from tests.support.jobs import add_worker, prompt
from tests.support.settings import make_settings
from tests.support.waiting import until

# Each command is a fresh interpreter, as an operator runs it.
pytestmark = pytest.mark.slow

ALICE, BOB, TEACHER = UserId("user001"), UserId("user002"), UserId("teacher")
PASSWORD = "workshop-password"
# Each user's files (below DATA), and the name each has in the room's zip (None: left out).
FILES: dict[str, str | None] = {
    "outputs/user001/ComfyUI_00001_.png": "user001/outputs/ComfyUI_00001_.png",
    "outputs/user001/video/clip.mp4": "user001/outputs/video/clip.mp4",
    "inputs/user001/photo.jpg": "user001/inputs/photo.jpg",
    "temp/user001/preview.png": None,
    "userdata/user001/workflows/mine.json": "user001/workflows/mine.json",
    "userdata/user001/comfy.settings.json": None,
    "outputs/user002/ComfyUI_00002_.png": "user002/outputs/ComfyUI_00002_.png",
    "userdata/user002/workflows/bob.json": "user002/workflows/bob.json",
    "outputs/teacher/demo.png": "teacher/outputs/demo.png",
    "userdata/teacher/workflows/lesson.json": "teacher/workflows/lesson.json",
}


@dataclass
class Room:
    data: Path
    env: dict[str, str]
    service: QueueService
    accounts: Accounts
    redis: Redis
    prefix: str
    finished: list[JobId]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.env, "room", *args, "--data", str(self.data))

    async def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.cli, *args)

    def files(self) -> set[str]:
        return {
            str(p.relative_to(self.data))
            for p in self.data.rglob("*")
            if p.is_file() and p.parts[len(self.data.parts)] != "archives"
        }

    def archives(self) -> list[Path]:
        folder = self.data / "archives"
        return sorted(folder.iterdir()) if folder.exists() else []

    async def job_keys(self) -> set[str]:
        return {k async for k in self.redis.scan_iter(match=f"{self.prefix}job:*")}

    async def state(self) -> tuple[set[str], list[str], set[str], set[str]]:
        """What a refused command must leave alone: files, accounts, jobs, all keys."""
        names = [a.name for a in await self.accounts.all()]
        keys = {k async for k in self.redis.scan_iter(match=f"{self.prefix}*")}
        return self.files(), names, await self.job_keys(), keys


@pytest.fixture
async def room(redis_server: RedisServer, prefix: str, redis: Redis, tmp_path: Path) -> Room:
    data = tmp_path / "data"
    for rel in FILES:
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"bytes of {rel}".encode())
    settings: Settings = make_settings(redis_server, prefix, data_dir=data)
    accounts = open_accounts(redis, settings)
    rows = {}
    for name, role in (
        (ALICE, Role.PARTICIPANT),
        (BOB, Role.PARTICIPANT),
        (TEACHER, Role.INSTRUCTOR),
    ):
        await accounts.add(name, role, PASSWORD)
        rows[name] = (role.value, PASSWORD)
    write_credentials(data / "credentials.csv", rows)
    service = QueueService(settings, redis)
    await service.initialize()
    finished = [await _finished_job(service, user) for user in (ALICE, ALICE, BOB)]
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}
    env.pop("CW_DATA_DIR", None)
    return Room(data, env, service, accounts, redis, prefix, finished)


async def _finished_job(service: QueueService, user: UserId) -> JobId:
    worker = await add_worker(service)
    job_id = (await service.submit(user, Lane.NORMAL, prompt())).id
    claimed = await service.claim(worker, wait=0)
    assert claimed is not None and claimed.id == job_id
    await service.complete(job_id, worker, claimed.attempts)
    return job_id


def zip_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        return set(z.namelist())


ROOM_ZIP = {name for name in FILES.values() if name}


# -- export and archive -----------------------------------------------------------------------


async def test_room_export_is_one_zip_with_a_folder_per_user(room: Room, tmp_path: Path) -> None:
    out = tmp_path / "room.zip"
    done = await room.run("export", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert zip_names(out) == ROOM_ZIP
    assert f"wrote {out}" in done.stdout
    assert "files" in done.stderr  # progress
    again = await room.run("export", "--out", str(out))
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"comfy-workshop room export: {out} exists: remove it or choose another --out FILE"
    )


async def test_room_archive_keeps_the_zip_in_the_archives_folder(
    room: Room, tmp_path: Path
) -> None:
    done = await room.run("archive")
    assert done.returncode == 0, done.stderr
    [archive] = room.archives()
    assert archive.suffix == ".zip"
    assert zip_names(archive) == ROOM_ZIP
    elsewhere = await room.run("archive", "--out", str(tmp_path / "kept"))
    assert elsewhere.returncode == 0, elsewhere.stderr
    [kept] = (tmp_path / "kept").iterdir()
    assert zip_names(kept) == ROOM_ZIP


async def test_a_missing_data_folder_is_one_clear_line(room: Room, tmp_path: Path) -> None:
    done = await asyncio.to_thread(
        run_cli, room.env, "room", "export", "--data", str(tmp_path / "nowhere")
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"comfy-workshop room export: no data folder at {tmp_path / 'nowhere'}: "
        "give --data DIR (or set CW_DATA_DIR)"
    )


# -- reset --------------------------------------------------------------------------------------


async def test_reset_archives_then_clears_the_participants_and_keeps_accounts(room: Room) -> None:
    session = await room.accounts.log_in(ALICE, PASSWORD, "127.0.0.1")
    assert session is not None
    await room.service.publish_workflow("intro", b'{"nodes": [], "links": []}', TEACHER)
    await room.service.first_visit_done(ALICE)
    assert await room.service.first_visit_workflow(ALICE) is None
    done = await room.run("reset")
    assert done.returncode == 0, done.stderr
    [archive] = room.archives()
    assert zip_names(archive) == ROOM_ZIP  # everything, before anything went
    # The participants' folders are gone; the instructor's stay; the credentials too.
    assert room.files() == {
        "outputs/teacher/demo.png",
        "userdata/teacher/workflows/lesson.json",
        "credentials.csv",
    }
    assert await room.job_keys() == set()
    assert await room.service.user_jobs(ALICE) == []
    assert sorted(a.name for a in await room.accounts.all()) == [TEACHER, ALICE, BOB]
    assert await room.accounts.by_session(ALICE, SessionId(session.id)) is None  # signed out
    assert "forgot 3 finished jobs" in done.stdout
    # The published workflows stay, and the next visit opens the first one again.
    first = await room.service.first_visit_workflow(ALICE)
    assert first is not None and first.name == "intro"


async def test_reset_keeps_what_keep_says(room: Room) -> None:
    done = await room.run("reset", "--keep", "workflows, history")
    assert done.returncode == 0, done.stderr
    assert room.files() == {
        "userdata/user001/workflows/mine.json",
        "userdata/user001/comfy.settings.json",
        "userdata/user002/workflows/bob.json",
        "outputs/teacher/demo.png",
        "userdata/teacher/workflows/lesson.json",
        "credentials.csv",
    }
    assert {j.id for j in await room.service.user_jobs(ALICE)} == set(room.finished[:2])
    # Accounts were not kept: the participants are gone, from Redis and from `up`'s file (so
    # the next `up` makes new passwords); the instructor stays.
    assert [a.name for a in await room.accounts.all()] == [TEACHER]
    assert read_credentials(room.data / "credentials.csv") == {
        TEACHER: (Role.INSTRUCTOR.value, PASSWORD)
    }


async def test_reset_without_an_archive_needs_yes(room: Room) -> None:
    before = await room.state()
    refused = await room.run("reset", "--no-archive")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "comfy-workshop room reset: --no-archive deletes the room's work without a copy: "
        "add --yes to do so"
    )
    assert await room.state() == before
    assert room.archives() == []
    done = await room.run("reset", "--no-archive", "--yes", "--keep", "none")
    assert done.returncode == 0, done.stderr
    assert room.archives() == []
    assert room.files() == {
        "outputs/teacher/demo.png",
        "userdata/teacher/workflows/lesson.json",
        "credentials.csv",
    }
    assert [a.name for a in await room.accounts.all()] == [TEACHER]


@pytest.mark.parametrize(
    "keep", ["accounts,everything", "outputs,inputs,workflows,history,accounts"]
)
async def test_a_bad_keep_is_refused_and_changes_nothing(room: Room, keep: str) -> None:
    before = await room.state()
    refused = await room.run("reset", "--keep", keep)
    assert refused.returncode == 1
    assert refused.stderr.startswith("comfy-workshop room reset: --keep")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert await room.state() == before
    assert room.archives() == []


async def test_reset_refuses_while_jobs_wait_or_run_unless_forced(room: Room) -> None:
    worker = await add_worker(room.service, "gpu2")
    running = (await room.service.submit(BOB, Lane.NORMAL, prompt())).id
    assert (await room.service.claim(worker, wait=0)) is not None
    queued = (await room.service.submit(ALICE, Lane.NORMAL, prompt())).id
    before = await room.state()
    refused = await room.run("reset")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "comfy-workshop room reset: jobs are in the room (1 queued, 1 running): wait for them "
        "(pause the queue in the dashboard), or add --force to cancel them"
    )
    assert await room.state() == before
    assert room.archives() == []
    forced = await room.run("reset", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "cancelled 2 jobs" in forced.stdout
    assert await room.job_keys() == set()  # cancelled, then forgotten with the rest
    for job_id in (queued, running):
        with pytest.raises(JobNotFound):
            await room.service.job(job_id)
    assert len(room.archives()) == 1


async def test_reset_needs_the_running_workshop(room: Room) -> None:
    env = {k: v for k, v in room.env.items() if k != "CW_REDIS_URL"}
    before = await room.state()
    done = await asyncio.to_thread(run_cli, env, "room", "reset", "--data", str(room.data))
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"comfy-workshop: no workshop is running on {room.data}")
    assert await room.state() == before


async def test_ctrl_c_while_archiving_leaves_no_half_zip_and_no_traceback(room: Room) -> None:
    big = room.data / "outputs/user001/big.mp4"
    with big.open("wb") as f:
        f.truncate(1024 * 1024 * 1024)  # sparse: takes no disk, but seconds to zip
    before = await room.state()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "queue_manager", "room", "reset", "--data", str(room.data)),
        env=room.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    archives = room.data / "archives"

    def half_written() -> bool:
        return any(p.name.endswith(".part") and p.stat().st_size > 0 for p in archives.glob(".*"))

    try:
        await until(half_written, 30, "the archive being written")
        proc.send_signal(signal.SIGINT)
        _, raw_err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    err = raw_err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted while archiving: nothing was deleted" in err
    assert list(archives.iterdir()) == []
    assert await room.state() == before
