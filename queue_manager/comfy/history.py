"""Our jobs as ComfyUI shows them: queue items, history entries and `/api/jobs` records.

Pure functions of `Job` (of `JobHead` where a list shows no graph). The shapes follow
ComfyUI 0.25.0's captures (PROTOCOL.md sections 4-6): the page's queue panel, history and
result views read these and nothing else, so a job that ran on a remote worker looks exactly
like one that ran locally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from queue_manager.core.jobs import Job, JobHead, JobStatus

# extra_data keys ComfyUI treats as secrets: kept for the worker, never shown back.
SECRET_EXTRA = frozenset({"auth_token_comfy_org", "api_key_comfy_org"})
INTERRUPTED = "execution_interrupted"

JOB_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")


def ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def api_status(job: JobHead) -> str:
    """The `/api/jobs` status: an interrupted run reads `cancelled`, as in ComfyUI."""
    if job.status is JobStatus.QUEUED:
        return "pending"
    if job.status is JobStatus.RUNNING:
        return "in_progress"
    if job.status is JobStatus.FAILED and job.error and job.error.type == INTERRUPTED:
        return "cancelled"
    return job.status.value


def shown_extra_data(job: Job) -> dict[str, JsonValue]:
    extra = {k: v for k, v in job.extra_data.items() if k not in SECRET_EXTRA}
    if job.client_id:
        extra["client_id"] = job.client_id
    extra["create_time"] = ms(job.created_at)
    return extra


def queue_item(job: Job) -> list[Any]:
    """`[number, prompt_id, prompt, extra_data, outputs_to_execute]`."""
    return [job.seq, job.id, job.prompt, shown_extra_data(job), list(job.targets)]


def queue(jobs: Iterable[Job]) -> dict[str, list[list[Any]]]:
    jobs = list(jobs)
    running = [queue_item(j) for j in jobs if j.status is JobStatus.RUNNING]
    pending = [queue_item(j) for j in jobs if j.status is JobStatus.QUEUED]
    return {"queue_running": running, "queue_pending": pending}


def outputs(job: Job) -> dict[str, dict[str, Any]]:
    """Per node, per media key, the file descriptors (as stored for this user) and the
    non-file UI output, like ComfyUI's history `outputs`."""
    found: dict[str, dict[str, Any]] = {}
    for node, ui in job.ui.items():
        found.setdefault(node, {}).update(ui)
    for item in job.outputs:
        node, media = str(item.get("node_id", "")), str(item.get("media", "images"))
        descriptor = {k: item.get(k) for k in ("filename", "subfolder", "type")}
        found.setdefault(node, {}).setdefault(media, []).append(descriptor)
    return found


def messages(job: Job) -> list[list[Any]]:
    """The status messages of a finished job (start, cached, then how it ended)."""
    started = ms(job.started_at or job.claimed_at or job.created_at)
    out: list[list[Any]] = [
        ["execution_start", {"prompt_id": job.id, "timestamp": started}],
        ["execution_cached", {"nodes": [], "prompt_id": job.id, "timestamp": started}],
    ]
    end = ms(job.finished_at)
    if job.status is JobStatus.COMPLETED:
        out.append(["execution_success", {"prompt_id": job.id, "timestamp": end}])
    elif job.status is JobStatus.CANCELLED or api_status(job) == "cancelled":
        out.append([INTERRUPTED, interrupted_message(job, end)])
    else:
        out.append(["execution_error", error_message(job, end)])
    return out


def _details(job: JobHead) -> Mapping[str, Any]:
    error = job.error
    return error.details if error and isinstance(error.details, Mapping) else {}


def error_message(job: JobHead, timestamp: int | None) -> dict[str, Any]:
    """ComfyUI's `execution_error` for a failed job, from our structured error."""
    error = job.error
    details = _details(job)
    return {
        "prompt_id": job.id,
        "node_id": error.node_id if error else None,
        "node_type": error.node_type if error else None,
        "executed": list(details.get("executed") or []),
        "exception_message": error.message if error else "the job failed",
        "exception_type": str(details.get("exception_type") or (error.type if error else "")),
        "traceback": [],
        "current_inputs": {},
        "current_outputs": {},
        "timestamp": timestamp,
    }


def interrupted_message(job: Job, timestamp: int | None) -> dict[str, Any]:
    error = job.error
    details = _details(job)
    return {
        "prompt_id": job.id,
        "node_id": (error.node_id if error else None) or job.node,
        "node_type": error.node_type if error else None,
        "executed": list(details.get("executed") or []),
        "timestamp": timestamp,
    }


def execution_status(job: Job) -> dict[str, Any]:
    ok = job.status is JobStatus.COMPLETED
    return {
        "status_str": "success" if ok else "error",
        "completed": ok,
        "messages": messages(job),
    }


def history_entry(job: Job) -> dict[str, Any]:
    found = outputs(job)
    meta = {
        node: {"node_id": node, "display_node": node, "parent_node": None, "real_node_id": node}
        for node in found
    }
    return {
        "prompt": queue_item(job),
        "outputs": found,
        "status": execution_status(job),
        "meta": meta,
    }


def history(
    finished: Sequence[Job], max_items: int | None = None, offset: int | None = None
) -> dict[str, Any]:
    """`GET /history`: finished jobs oldest first; `max_items` alone keeps the newest N,
    with `offset` it skips the `offset` oldest first (ComfyUI's rules)."""
    jobs = sorted(finished, key=lambda j: (j.finished_at or 0.0, j.seq))
    if offset is not None and offset > 0:
        jobs = jobs[offset:]
        if max_items is not None:
            jobs = jobs[:max_items]
    elif max_items is not None:
        jobs = jobs[-max_items:] if max_items > 0 else []
    return {j.id: history_entry(j) for j in jobs}


def preview_output(job: JobHead) -> dict[str, Any] | None:
    """The first previewable output, preferring saved ones (`type: output`)."""
    candidates = [o for o in job.outputs if o.get("media") in ("images", "gifs", "video", "3d")]
    candidates.sort(key=lambda o: o.get("type") != "output")
    if not candidates:
        return None
    first = candidates[0]
    return {
        "filename": first.get("filename"),
        "subfolder": first.get("subfolder"),
        "type": first.get("type"),
        "nodeId": first.get("node_id"),
        "mediaType": first.get("media"),
    }


def job_summary(job: JobHead) -> dict[str, Any]:
    """A record of `/api/jobs`; absent fields are left out, not null."""
    record: dict[str, Any] = {
        "id": job.id,
        "status": api_status(job),
        "priority": job.seq,
        "create_time": ms(job.created_at),
    }
    if job.status.is_final:
        record["execution_start_time"] = ms(job.started_at or job.claimed_at or job.finished_at)
        record["execution_end_time"] = ms(job.finished_at)
        if record["status"] == "failed":
            record["execution_error"] = error_message(job, ms(job.finished_at))
    record["outputs_count"] = len(job.outputs) + sum(len(ui) for ui in job.ui.values())
    if (preview := preview_output(job)) is not None:
        record["preview_output"] = preview
    if job.workflow_id is not None:
        record["workflow_id"] = job.workflow_id
    return record


def job_detail(job: Job) -> dict[str, Any]:
    record = job_summary(job)
    if job.status.is_final:
        record["outputs"] = outputs(job)
        record["execution_status"] = execution_status(job)
        record["workflow"] = {"prompt": job.prompt, "extra_data": shown_extra_data(job)}
    return record


@dataclass(frozen=True)
class JobsQuery:
    statuses: frozenset[str] | None = None
    workflow_id: str | None = None
    sort_by: str = "created_at"
    descending: bool = True
    limit: int | None = None
    offset: int = 0


class BadJobsQuery(ValueError):
    """A query `/api/jobs` answers with 400 `{"error": message}`."""


def parse_jobs_query(params: Mapping[str, str]) -> JobsQuery:
    statuses = None
    if raw := params.get("status"):
        wanted = [s.strip() for s in raw.split(",") if s.strip()]
        bad = [s for s in wanted if s not in JOB_STATUSES]
        if bad:
            raise BadJobsQuery(
                f"Invalid status value(s): {', '.join(bad)}. "
                f"Valid values: {', '.join(JOB_STATUSES)}"
            )
        statuses = frozenset(wanted)
    sort_by = params.get("sort_by", "created_at")
    if sort_by not in ("created_at", "execution_duration"):
        raise BadJobsQuery("sort_by must be 'created_at' or 'execution_duration'")
    order = params.get("sort_order", "desc")
    if order not in ("asc", "desc"):
        raise BadJobsQuery("sort_order must be 'asc' or 'desc'")
    limit = _int(params.get("limit"), "limit", minimum=1)
    offset = _int(params.get("offset"), "offset", minimum=0) or 0
    return JobsQuery(statuses, params.get("workflow_id"), sort_by, order == "desc", limit, offset)


def _int(raw: str | None, name: str, *, minimum: int) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        kind = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise BadJobsQuery(f"{name} must be {kind}")
    return value


def list_jobs(jobs: Iterable[JobHead], query: JobsQuery) -> dict[str, Any]:
    records = [job_summary(j) for j in jobs]
    if query.statuses is not None:
        records = [r for r in records if r["status"] in query.statuses]
    if query.workflow_id is not None:
        records = [r for r in records if r.get("workflow_id") == query.workflow_id]
    if query.sort_by == "execution_duration":

        def key(r: dict[str, Any]) -> float:
            start, end = r.get("execution_start_time"), r.get("execution_end_time")
            return float(end - start) if start is not None and end is not None else -1.0

        records.sort(key=key, reverse=query.descending)
    else:
        records.sort(key=lambda r: (r["create_time"], r["priority"]), reverse=query.descending)
    total = len(records)
    end = None if query.limit is None else query.offset + query.limit
    page = records[query.offset : end]
    return {
        "jobs": page,
        "pagination": {
            "offset": query.offset,
            "limit": query.limit,
            "total": total,
            "has_more": end is not None and end < total,
        },
    }
