"""Our jobs as ComfyUI shows them (`comfy.history`): queue items, history entries, `/api/jobs`
records and their query, in the shapes the recorded ComfyUI 0.25.0 answers have."""

from __future__ import annotations

from typing import Any

import pytest

from queue_manager.comfy.history import (
    BadJobsQuery,
    JobsQuery,
    api_status,
    history,
    history_entry,
    job_detail,
    job_summary,
    list_jobs,
    messages,
    parse_jobs_query,
    queue,
    queue_item,
)
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import Job, JobError, JobStatus, Lane
from tests.support.captures import capture

T0 = 1_800_000_000.0
PROMPT = {"1": {"class_type": "SaveImage", "inputs": {}}}
SAVED = {
    "node_id": "4",
    "media": "images",
    "filename": "ref_00001_.png",
    "subfolder": "capture",
    "type": "output",
    "size": 10,
}
PREVIEWED = {**SAVED, "node_id": "5", "filename": "p_00001_.png", "subfolder": "", "type": "temp"}
INTERRUPTED = JobError(type="execution_interrupted", message="stopped", node_id="2")
FAILED = JobError(type="execution_error", message="boom", node_id="3", node_type="KSampler")


def job(n: int = 1, status: JobStatus = JobStatus.COMPLETED, **fields: Any) -> Job:
    """Job number `n`: made at T0 + n, and (when final) run for n seconds from T0 + 10n."""
    values: dict[str, Any] = {
        "id": JobId(f"0c0ffee0-0000-4000-8000-{n:012d}"),
        "user": UserId("user001"),
        "lane": Lane.NORMAL,
        "status": status,
        "seq": n,
        "prompt": PROMPT,
        "created_at": T0 + n,
    }
    if status is not JobStatus.QUEUED:
        values["claimed_at"] = values["started_at"] = T0 + 10 * n
    if status.is_final:
        values["finished_at"] = T0 + 11 * n
    values.update(fields)
    return Job.model_validate(values)


def recorded(name: str) -> Any:
    return capture(name)["response"]["body"]["json"]


def item_shape(item: list[Any]) -> list[str]:
    """A queue item's element types: [number, prompt_id, prompt, extra_data, outputs]."""
    return [type(x).__name__ for x in item]


# -- statuses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (JobStatus.QUEUED, None, "pending"),
        (JobStatus.RUNNING, None, "in_progress"),
        (JobStatus.COMPLETED, None, "completed"),
        (JobStatus.FAILED, FAILED, "failed"),
        (JobStatus.FAILED, INTERRUPTED, "cancelled"),  # an interrupted run, as in ComfyUI
        (JobStatus.CANCELLED, None, "cancelled"),
    ],
)
def test_each_job_status_reads_as_comfyuis(
    status: JobStatus, error: JobError | None, expected: str
) -> None:
    assert api_status(job(status=status, error=error)) == expected


@pytest.mark.parametrize(
    ("status", "error", "last"),
    [
        (JobStatus.COMPLETED, None, "execution_success"),
        (JobStatus.FAILED, FAILED, "execution_error"),
        (JobStatus.FAILED, INTERRUPTED, "execution_interrupted"),
        (JobStatus.CANCELLED, None, "execution_interrupted"),
    ],
)
def test_a_finished_jobs_messages_start_then_say_how_it_ended(
    status: JobStatus, error: JobError | None, last: str
) -> None:
    kinds = [kind for kind, _ in messages(job(status=status, error=error))]
    assert kinds == ["execution_start", "execution_cached", last]


# -- the queue ------------------------------------------------------------------------------------


def test_the_queue_splits_running_from_pending_in_the_recorded_item_shape() -> None:
    jobs = [
        job(1, JobStatus.RUNNING, client_id="page-1"),
        job(2, JobStatus.QUEUED, client_id="page-1"),
        job(3, JobStatus.QUEUED),
        job(4, JobStatus.COMPLETED),
    ]
    ours = queue(jobs)
    assert [[item[1] for item in ours[k]] for k in ours] == [[jobs[0].id], [jobs[1].id, jobs[2].id]]
    busy = recorded("get_queue_busy.json")
    for key in ("queue_running", "queue_pending"):
        assert item_shape(ours[key][0]) == item_shape(busy[key][-1])
        assert ours[key][0][3].keys() == busy[key][-1][3].keys()  # client_id, create_time


def test_a_queue_item_hides_comfy_org_secrets_and_adds_client_id_and_create_time() -> None:
    extra = {
        "extra_pnginfo": {"workflow": {}},
        "api_key_comfy_org": "k",
        "auth_token_comfy_org": "t",
    }
    item = queue_item(job(7, client_id="page-1", extra_data=extra, targets=["9"]))
    assert item == [
        7,
        job(7).id,
        PROMPT,
        {
            "extra_pnginfo": {"workflow": {}},
            "client_id": "page-1",
            "create_time": 1_800_000_007_000,
        },
        ["9"],
    ]


# -- history --------------------------------------------------------------------------------------

FIVE = [job(n) for n in (3, 1, 5, 2, 4)]  # finished at T0 + 11n: oldest is job 1


@pytest.mark.parametrize(
    ("max_items", "offset", "expected"),
    [
        (None, None, [1, 2, 3, 4, 5]),  # oldest first
        (2, None, [4, 5]),  # max_items alone: the newest N
        (0, None, []),
        (None, 2, [3, 4, 5]),  # offset skips the oldest
        (2, 1, [2, 3]),
        (1, 1, [2]),
    ],
)
def test_history_pages_as_comfyui_does(
    max_items: int | None, offset: int | None, expected: list[int]
) -> None:
    assert list(history(FIVE, max_items, offset)) == [job(n).id for n in expected]


def test_a_history_entry_has_the_recorded_shape() -> None:
    [entry] = recorded("get_history_item_success.json").values()
    ours = history_entry(job(1, client_id="page-1", outputs=[SAVED, PREVIEWED]))
    assert ours.keys() == entry.keys()
    assert item_shape(ours["prompt"]) == item_shape(entry["prompt"])
    assert ours["status"].keys() == entry["status"].keys()
    assert [kind for kind, _ in ours["status"]["messages"]] == [
        kind for kind, _ in entry["status"]["messages"]
    ]
    for (_, mine), (_, theirs) in zip(
        ours["status"]["messages"], entry["status"]["messages"], strict=True
    ):
        assert mine.keys() == theirs.keys()
    assert ours["meta"]["4"].keys() == entry["meta"]["4"].keys()
    assert ours["outputs"]["4"] == entry["outputs"]["4"]  # the saved image, as recorded


def test_history_outputs_group_files_by_node_and_media_beside_text_output() -> None:
    ours = history_entry(job(1, outputs=[SAVED, PREVIEWED], ui={"3": {"text": ["40"]}}))
    assert ours["outputs"] == {
        "3": {"text": ["40"]},
        "4": {"images": [{"filename": "ref_00001_.png", "subfolder": "capture", "type": "output"}]},
        "5": {"images": [{"filename": "p_00001_.png", "subfolder": "", "type": "temp"}]},
    }
    assert ours["status"]["status_str"] == "success" and ours["status"]["completed"] is True


# -- /api/jobs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capture_name", "recorded_job"),
    [
        ("get_api_jobs_item_pending.json", job(1, JobStatus.QUEUED)),
        ("get_api_jobs_item_running.json", job(1, JobStatus.RUNNING)),
        ("get_api_jobs_item_success.json", job(1, outputs=[SAVED])),
        (
            "get_api_jobs_item_failed.json",
            job(1, JobStatus.FAILED, error=FAILED, outputs=[PREVIEWED]),
        ),
        ("get_api_jobs_item_interrupted.json", job(1, JobStatus.FAILED, error=INTERRUPTED)),
    ],
)
def test_a_job_record_has_the_fields_comfyui_sends_for_its_state(
    capture_name: str, recorded_job: Job
) -> None:
    assert sorted(job_detail(recorded_job)) == sorted(recorded(capture_name))


def test_a_job_summary_names_its_workflow_and_first_saved_output() -> None:
    extra = {"extra_pnginfo": {"workflow": {"id": "wf-1", "nodes": []}}}
    record = job_summary(job(2, outputs=[PREVIEWED, SAVED], extra_data=extra))
    assert record["workflow_id"] == "wf-1"
    assert record["preview_output"] == {
        "filename": "ref_00001_.png",
        "subfolder": "capture",
        "type": "output",
        "nodeId": "4",
        "mediaType": "images",
    }
    assert (record["execution_start_time"], record["execution_end_time"]) == (
        1_800_000_020_000,
        1_800_000_022_000,
    )


@pytest.mark.parametrize(
    ("params", "capture_name"),
    [
        ({"status": "bogus"}, "get_api_jobs_bad_status.json"),
        ({"limit": "0"}, "get_api_jobs_bad_limit.json"),
    ],
)
def test_a_bad_jobs_query_is_refused_with_comfyuis_message(
    params: dict[str, str], capture_name: str
) -> None:
    with pytest.raises(BadJobsQuery) as refused:
        parse_jobs_query(params)
    assert {"error": str(refused.value)} == recorded(capture_name)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "pending,nope"}, "Invalid status value(s): nope."),
        ({"sort_by": "name"}, "sort_by must be 'created_at' or 'execution_duration'"),
        ({"sort_order": "up"}, "sort_order must be 'asc' or 'desc'"),
        ({"limit": "x"}, "limit must be a positive integer"),
        ({"offset": "-1"}, "offset must be a non-negative integer"),
    ],
)
def test_each_bad_jobs_parameter_is_named_in_the_refusal(
    params: dict[str, str], message: str
) -> None:
    with pytest.raises(BadJobsQuery, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_jobs_query(params)


def test_a_good_jobs_query_reads_every_parameter() -> None:
    query = parse_jobs_query(
        {
            "status": "pending, completed",
            "workflow_id": "wf",
            "sort_by": "execution_duration",
            "sort_order": "asc",
            "limit": "5",
            "offset": "2",
        }
    )
    assert query == JobsQuery(
        frozenset({"pending", "completed"}), "wf", "execution_duration", False, 5, 2
    )


@pytest.mark.parametrize(
    ("query", "expected", "has_more"),
    [
        (JobsQuery(), [5, 4, 3, 2, 1], False),  # newest first
        (JobsQuery(descending=False, limit=2), [1, 2], True),
        (JobsQuery(limit=2, offset=2), [3, 2], True),
        (JobsQuery(limit=2, offset=4), [1], False),
        (JobsQuery(sort_by="execution_duration", descending=True, limit=1), [5], True),
        (JobsQuery(statuses=frozenset({"pending"})), [], False),
    ],
)
def test_jobs_are_listed_sorted_and_paged(
    query: JobsQuery, expected: list[int], has_more: bool
) -> None:
    page = list_jobs(FIVE, query)
    assert [r["id"] for r in page["jobs"]] == [job(n).id for n in expected]
    assert page["pagination"] == {
        "offset": query.offset,
        "limit": query.limit,
        "total": len(expected) if query.statuses else 5,
        "has_more": has_more,
    }
    assert page["pagination"].keys() == recorded("get_api_jobs_all.json")["pagination"].keys()
