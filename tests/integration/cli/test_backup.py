"""`comfy-workshop backup` and `restore`, run as an operator runs them (subprocesses), on a
workshop with accounts, finished jobs and files: the restore drill (back up, lose everything,
restore, all is there), to a folder and to an S3-compatible server (moto, over HTTP), and the
refusals that keep a restore from doing harm."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.cli.roster import write_credentials
from queue_manager.core.accounts import Role
from queue_manager.core.ids import UserId
from queue_manager.core.jobs import Lane
from queue_manager.service.accounts import open_accounts
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.connection import connect
from tests.integration.cli.backup_support import S3, contents, files, s3, s3_server, wipe
from tests.support.cli import run_cli
from tests.support.jobs import add_worker, prompt
from tests.support.settings import make_settings

__all__ = ["s3", "s3_server"]  # fixtures
pytestmark = pytest.mark.slow

ALICE, BOB, TEACHER = UserId("user001"), UserId("user002"), UserId("teacher")
PASSWORDS = {ALICE: "alice-password", BOB: "bob-password", TEACHER: "teacher-password"}
FILES = {
    "outputs/user001/ComfyUI_00001_.png": b"\x89PNG alice's first image",
    "outputs/user001/video/clip.mp4": bytes(range(256)) * 4000,  # ~1 MB, every byte value
    "inputs/user001/photo.jpg": b"\xff\xd8 alice's upload",
    "userdata/user001/workflows/mine.json": b'{"nodes": []}',
    "userdata/user001/comfy.settings.json": b'{"Comfy.Theme": "dark"}',
    "outputs/user002/ComfyUI_00002_.png": b"\x89PNG bob's image",
    "userdata/teacher/workflows/lesson.json": b'{"lesson": 1}',
    "secret_key": b"s" * 43,
}
# Never in a backup: the Redis folder, scratch previews, a file being written.
NOT_BACKED_UP = {
    "redis/appendonly.aof": b"not ours to copy",
    "temp/user001/preview.png": b"scratch",
    "outputs/user001/.a1b2.part": b"half a file",
}


@dataclass
class Workshop:
    data: Path
    env: dict[str, str]
    settings: Settings
    redis: Redis
    prefix: str

    async def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            run_cli, {**self.env, **(env or {})}, *args, "--data", str(self.data)
        )

    async def state(self) -> tuple[dict[str, object], dict[str, bytes]]:
        return await contents(self.redis, self.prefix), files(self.data)


@pytest.fixture
async def workshop(
    redis_server: RedisServer, prefix: str, redis: Redis, tmp_path: Path
) -> Workshop:
    data = tmp_path / "data"
    for rel, body in {**FILES, **NOT_BACKED_UP}.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(body)
    settings = make_settings(redis_server, prefix, data_dir=data)
    accounts = open_accounts(redis, settings)
    for name, role in (
        (ALICE, Role.PARTICIPANT),
        (BOB, Role.PARTICIPANT),
        (TEACHER, Role.INSTRUCTOR),
    ):
        await accounts.add(name, role, PASSWORDS[name])
    write_credentials(
        data / "credentials.csv", {n: (Role.PARTICIPANT.value, p) for n, p in PASSWORDS.items()}
    )
    service = QueueService(settings, redis)
    await service.initialize()
    worker = await add_worker(service)
    for user in (ALICE, ALICE, BOB):
        job = await service.submit(user, Lane.NORMAL, prompt())
        claimed = await service.claim(worker, wait=0)
        assert claimed is not None and claimed.id == job.id
        await service.complete(job.id, worker, claimed.attempts)
    await redis.zadd(f"{prefix}workers", {"gpu1": 0})  # a worker gone long ago: not in use now
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}
    for name in ("CW_DATA_DIR", "CW_BACKUP_TO", "CW_BACKUP_KEEP"):
        env.pop(name, None)
    return Workshop(data, env, settings, redis, prefix)


def s3_or_folder(
    kind: str, workshop: Workshop, request: pytest.FixtureRequest
) -> tuple[str, dict[str, str]]:
    if kind == "folder":
        return str(workshop.data.parent / "backups"), {}
    bucket: S3 = request.getfixturevalue("s3")
    return f"s3://{bucket.bucket}/workshop", bucket.env()


@pytest.mark.parametrize("kind", ["folder", "s3"])
async def test_a_workshop_lost_after_a_backup_is_restored_whole(
    workshop: Workshop, kind: str, request: pytest.FixtureRequest
) -> None:
    where, env = s3_or_folder(kind, workshop, request)
    await workshop.redis.set("other:job:1", "another workshop's")
    before = await workshop.state()
    assert len(before[0]) > 10 and set(before[1]) == {*FILES, "credentials.csv"}

    made = await workshop.cli("backup", "--to", where, env=env)
    assert made.returncode == 0, made.stderr
    last = json.loads(await workshop.redis.get(f"{workshop.prefix}backup:last") or "{}")
    assert last["target"] == where and last["files"] == len(FILES) + 1
    assert set(last) == {"id", "finished_at", "target", "bytes", "files", "version"}

    await wipe(workshop.redis, workshop.prefix, workshop.data)
    assert await workshop.state() == ({}, {})
    restored = await workshop.cli("restore", "--from", where, env=env)
    assert restored.returncode == 0, restored.stderr

    assert await workshop.state() == before  # every key and value, every file byte-equal
    accounts = open_accounts(workshop.redis, workshop.settings)
    for name, password in PASSWORDS.items():
        assert await accounts.verify(name, password, "127.0.0.1") is not None, name
    assert await workshop.redis.get("other:job:1") == "another workshop's"
    assert (workshop.data / "redis/appendonly.aof").read_bytes() == b"not ours to copy"


async def test_a_backup_holds_the_snapshot_files_and_manifest_only(
    workshop: Workshop, s3: S3
) -> None:
    made = await workshop.cli("backup", "--to", f"s3://{s3.bucket}/room/", env=s3.env())
    assert made.returncode == 0, made.stderr
    names = {key.split("/", 2)[2] for key in s3.objects()}
    assert names == {"redis.snapshot", "files.tar", "manifest.json"}


async def test_a_damaged_backup_is_refused_by_name_and_nothing_changes(
    workshop: Workshop, tmp_path: Path
) -> None:
    where = tmp_path / "backups"
    assert (await workshop.cli("backup", "--to", str(where))).returncode == 0
    (archive,) = where.glob("*/files.tar")
    with archive.open("r+b") as f:
        f.seek(2000)
        f.write(b"X")
    await workshop.redis.set(f"{workshop.prefix}control", "changed since")
    before = await workshop.state()

    refused = await workshop.cli("restore", "--from", str(where))
    assert refused.returncode == 1
    assert "files.tar does not match its checksum" in refused.stderr
    assert "nothing was changed" in refused.stderr and "Traceback" not in refused.stderr
    assert await workshop.state() == before


async def test_retention_keeps_the_newest_backups_and_clears_old_leftovers(
    workshop: Workshop, tmp_path: Path
) -> None:
    where = tmp_path / "backups"
    (where / "2020-01-01T00-00-00Z").mkdir(parents=True)  # a crash's leftover: no manifest
    (where / "2020-01-01T00-00-00Z" / "files.tar").write_bytes(b"half")
    (where / "notes").mkdir()  # not a backup: never touched
    for _ in range(3):
        made = await workshop.cli("backup", "--to", str(where), "--keep", "2")
        assert made.returncode == 0, made.stderr
    kept = sorted(p.name for p in where.iterdir())
    assert len(kept) == 3 and "notes" in kept
    assert all((where / name / "manifest.json").is_file() for name in kept if name != "notes")


async def test_a_backup_without_its_manifest_is_never_restored(
    workshop: Workshop, tmp_path: Path
) -> None:
    where = tmp_path / "backups"
    assert (await workshop.cli("backup", "--to", str(where))).returncode == 0
    (first,) = where.iterdir()
    await workshop.redis.set(f"{workshop.prefix}marker", "after the first backup")
    assert (await workshop.cli("backup", "--to", str(where))).returncode == 0
    second = next(p for p in where.iterdir() if p != first)
    (second / "manifest.json").unlink()  # as if interrupted before its manifest

    listed = await workshop.cli("backup", "--list", "--to", str(where))
    assert f"{first.name}  complete" in listed.stdout
    assert f"{second.name}  unfinished" in listed.stdout
    refused = await workshop.cli("restore", second.name, "--from", str(where))
    assert refused.returncode == 1 and f"no complete backup '{second.name}'" in refused.stderr
    restored = await workshop.cli("restore", "--from", str(where))  # latest: the first
    assert restored.returncode == 0, restored.stderr
    assert await workshop.redis.get(f"{workshop.prefix}marker") is None


async def test_a_restore_is_refused_while_jobs_wait_unless_forced(
    workshop: Workshop, tmp_path: Path
) -> None:
    where = tmp_path / "backups"
    assert (await workshop.cli("backup", "--to", str(where))).returncode == 0
    service = QueueService(workshop.settings, workshop.redis)
    await service.submit(BOB, Lane.NORMAL, prompt())
    before = await workshop.state()

    refused = await workshop.cli("restore", "--from", str(where))
    assert refused.returncode == 1
    assert "1 jobs queued and 0 running" in refused.stderr and "--force" in refused.stderr
    assert await workshop.state() == before

    forced = await workshop.cli("restore", "--from", str(where), "--force")
    assert forced.returncode == 0, forced.stderr
    assert sum(int(n) for n in await workshop.redis.hvals(f"{workshop.prefix}queued")) == 0


async def test_s3_errors_are_one_line_saying_what_to_do(workshop: Workshop, s3: S3) -> None:
    missing = await workshop.cli("backup", "--to", "s3://no-such-bucket/x", env=s3.env())
    assert missing.returncode == 1 and "create it first" in missing.stderr
    unreachable = {**s3.env(), "CW_BACKUP_S3_ENDPOINT_URL": "http://127.0.0.1:9"}
    down = await workshop.cli("backup", "--to", f"s3://{s3.bucket}/x", env=unreachable)
    assert down.returncode == 1 and "cannot reach http://127.0.0.1:9" in down.stderr
    for said in (missing, down):
        assert "Traceback" not in said.stderr and len(said.stderr.strip().splitlines()) == 1


async def test_a_local_workshop_is_restored_on_a_new_machine_before_its_first_up(
    workshop: Workshop, tmp_path: Path
) -> None:
    where = tmp_path / "backups"
    assert (await workshop.cli("backup", "--to", str(where))).returncode == 0
    before = await workshop.state()
    new = tmp_path / "new-machine"
    env = {k: v for k, v in workshop.env.items() if k != "CW_REDIS_URL"}

    restored = await asyncio.to_thread(
        run_cli, env, "restore", "--from", str(where), "--data", str(new)
    )
    assert restored.returncode == 0, restored.stderr
    assert "started the workshop's Redis" in restored.stderr
    server = RedisServer((new / "redis").resolve())  # as `up` starts it: from its AOF
    await asyncio.to_thread(server.start)
    client = connect(server.url)
    try:
        assert await contents(client, workshop.prefix) == before[0]
    finally:
        await client.aclose()
        await asyncio.to_thread(server.stop)
    assert files(new) == before[1]
