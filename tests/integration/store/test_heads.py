"""Job heads against a real redis-server: what lists show, read without the graph, equal to
the same fields of the whole job, for jobs stored before heads existed too."""

from __future__ import annotations

import dataclasses

from pydantic import JsonValue
from redis.asyncio import Redis

from queue_manager.core.jobs import JobHead, JobStatus
from queue_manager.core.queueing import Claimed
from queue_manager.store import JobStore, WorkerStore
from queue_manager.store.keys import Keys
from tests.integration.store.test_jobs import register
from tests.support.jobs import new_job, user

WORKFLOW: dict[str, JsonValue] = {
    "extra_pnginfo": {"workflow": {"id": "wf-1", "nodes": [{"id": 1}] * 50}}
}


async def test_a_head_is_the_whole_jobs_list_fields(jobs: JobStore, workers: WorkerStore) -> None:
    w = await register(workers)
    with_workflow = dataclasses.replace(new_job(user(1)), extra_data=WORKFLOW)
    a = (await jobs.submit(with_workflow)).id
    b = (await jobs.submit(new_job(user(1)))).id
    claimed = await jobs.claim(w)
    assert isinstance(claimed, Claimed) and claimed.id == a
    await jobs.complete(a, w, 1)

    heads = {h.id: h for h in await jobs.user_heads(user(1))}
    whole = {j.id: j for j in await jobs.get_many([a, b])}
    for job_id, head in heads.items():
        assert head == JobHead.model_validate(
            whole[job_id].model_dump(include=set(JobHead.model_fields))
        )
    assert heads[a].workflow_id == "wf-1" and heads[a].status is JobStatus.COMPLETED
    assert heads[b].workflow_id is None and heads[b].status is JobStatus.QUEUED
    assert "prompt" not in heads[a].model_dump()


async def test_a_job_stored_before_heads_shows_its_workflow(
    jobs: JobStore, redis: Redis, keys: Keys
) -> None:
    job = (await jobs.submit(dataclasses.replace(new_job(user(1)), extra_data=WORKFLOW))).id
    await redis.hdel(keys.job(job), "workflow_id")  # as an older queue manager stored it
    [head] = await jobs.user_heads(user(1))
    assert head.workflow_id == "wf-1"
    [whole] = await jobs.get_many([job])
    assert whole.workflow_id == "wf-1"


async def test_only_the_users_own_jobs_in_their_order(jobs: JobStore) -> None:
    mine = [(await jobs.submit(new_job(user(1)))).id for _ in range(3)]
    await jobs.submit(new_job(user(2)))
    assert [h.id for h in await jobs.user_heads(user(1))] == mine
    assert await jobs.user_heads(user(3)) == []
