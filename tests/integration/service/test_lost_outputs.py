"""The files an attempt stored before it lost its job are deleted: the attempt that finishes
the job lists its own, and the user's folder keeps one copy of each output, none beside it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from queue_manager.contract.worker_api import OutputUpload
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.service.queue import QueueService
from queue_manager.settings import Settings
from queue_manager.store.keys import Keys
from tests.support.clock import FakeClock
from tests.support.jobs import add_worker, prompt, user


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def svc(settings: Settings, redis: Redis, clock: FakeClock, data: Path) -> QueueService:
    return QueueService(settings.model_copy(update={"data_dir": data}), redis, clock)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store(svc: QueueService, job: JobId, worker: WorkerId, attempt: int, name: str) -> str:
    upload = OutputUpload(attempt=attempt, filename=name, subfolder="f", node_id="9")
    stored = await svc.store_output(job, worker, upload, _body(b"png"))
    return f"{stored.subfolder}/{stored.filename}"


def folder(data: Path, who: UserId) -> set[str]:
    root = data / "outputs" / who
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def test_a_restarted_workers_stored_output_is_deleted_and_the_rerun_keeps_its_own(
    svc: QueueService, data: Path
) -> None:
    await svc.initialize()
    gpu1, gpu2 = await add_worker(svc, "gpu1"), await add_worker(svc, "gpu2")
    job = await svc.submit(user(1), Lane.NORMAL, prompt())
    assert (await svc.claim(gpu1, wait=0)) is not None
    lost = await store(svc, job.id, gpu1, 1, "p_00001_.png")
    await add_worker(svc, "gpu1")  # the agent restarted: the attempt is lost, its file deleted
    assert folder(data, user(1)) == set()
    again = await svc.claim(gpu2, wait=0)
    assert again is not None and again.attempts == 2
    kept = await store(svc, job.id, gpu2, 2, "p_00001_.png")
    assert kept == lost  # deleted at once: the rerun's copy has the name back
    await svc.complete(job.id, gpu2, 2)
    await svc.reap()
    assert folder(data, user(1)) == {kept}
    done = await svc.user_job(user(1), job.id)
    assert done.status is JobStatus.COMPLETED
    assert [f"{o['subfolder']}/{o['filename']}" for o in done.outputs or []] == [kept]


async def test_a_lost_file_named_to_leave_the_users_folder_is_never_deleted(
    svc: QueueService, data: Path, redis: Redis, prefix: str
) -> None:
    """The list is written only by the queue's own scripts; a name in it that would leave the
    folder (a corrupted or forged entry) is refused, and the entries after it still go."""
    await svc.initialize()
    victim = data / "outputs" / "secret.png"
    other = data / "outputs" / "user002" / "secret.png"
    gone = data / "outputs" / "user001" / "x.png"
    dotted = data / "outputs" / "user001" / "v1..2_00001_.png"  # a stored name may hold ".."
    for path in (victim, other, gone, dotted):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"keep")
    forged = [
        {"user": "user001", "type": "output", "subfolder": "..", "filename": "secret.png"},
        {"user": "user001", "type": "output", "subfolder": "", "filename": "../secret.png"},
        {"user": "..", "type": "output", "subfolder": "user002", "filename": "secret.png"},
        {"user": "user001", "type": "output", "subfolder": "", "filename": ".."},
        {"user": "user001"},
        "not json",
        {"user": "user001", "type": "output", "subfolder": "", "filename": "x.png"},
        {"user": "user001", "type": "output", "subfolder": "", "filename": "v1..2_00001_.png"},
    ]
    entries = [e if isinstance(e, str) else json.dumps(e) for e in forged]
    await redis.rpush(Keys(prefix).lost_outputs, *entries)
    assert await svc.delete_lost_outputs() == 2
    assert victim.read_bytes() == b"keep" and other.read_bytes() == b"keep"
    assert not gone.exists() and not dotted.exists()
    assert await redis.llen(Keys(prefix).lost_outputs) == 0
