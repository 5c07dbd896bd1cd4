"""The simulator's queue and history, and their JSON views (`/queue`, `/history`, `/api/jobs`)
in the shapes a real ComfyUI 0.25.0 answers (captures/comfyui-0.25.0/get_*)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SECRET_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
JOB_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
MAX_HISTORY = 10_000


@dataclass
class QueueItem:
    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]  # includes client_id and create_time, as ComfyUI stores it
    outputs: list[str]

    @property
    def client_id(self) -> str | None:
        cid = self.extra_data.get("client_id")
        return str(cid) if cid else None

    def as_list(self) -> list[Any]:
        public = {k: v for k, v in self.extra_data.items() if k not in SECRET_KEYS}
        return [self.number, self.prompt_id, self.prompt, public, self.outputs]


@dataclass
class Finished:
    item: QueueItem
    outcome: str  # success | error | interrupted
    outputs: dict[str, dict[str, list[Any]]]
    messages: list[list[Any]]
    start_ms: int
    end_ms: int

    def entry(self) -> dict[str, Any]:
        return {
            "prompt": self.item.as_list(),
            "outputs": self.outputs,
            "status": self.status(),
            "meta": {
                n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n}
                for n in self.outputs
            },
        }

    def status(self) -> dict[str, Any]:
        ok = self.outcome == "success"
        return {
            "status_str": "success" if ok else "error",
            "completed": ok,
            "messages": self.messages,
        }

    @property
    def job_status(self) -> str:
        return {"success": "completed", "error": "failed"}.get(self.outcome, "cancelled")


@dataclass
class SimState:
    counter: int = 0
    pending: list[QueueItem] = field(default_factory=list)
    running: QueueItem | None = None
    history: OrderedDict[str, Finished] = field(default_factory=OrderedDict)

    def next_number(self) -> int:
        n = self.counter
        self.counter += 1
        return n

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    def take(self) -> QueueItem | None:
        if not self.pending:
            return None
        item = min(self.pending, key=lambda i: i.number)
        self.pending.remove(item)
        self.running = item
        return item

    def finish(self, done: Finished) -> None:
        self.running = None
        self.history[done.item.prompt_id] = done
        while len(self.history) > MAX_HISTORY:
            self.history.popitem(last=False)

    def delete_pending(self, ids: Iterable[str]) -> None:
        drop = set(ids)
        self.pending = [i for i in self.pending if i.prompt_id not in drop]

    # -- views ----------------------------------------------------------------------------

    def queue_json(self) -> dict[str, Any]:
        return {
            "queue_running": [self.running.as_list()] if self.running else [],
            "queue_pending": [i.as_list() for i in self.pending],
        }

    def history_json(self, max_items: int | None, offset: int | None) -> dict[str, Any]:
        items = list(self.history.items())
        if offset is not None:
            items = items[offset:]
            if max_items is not None:
                items = items[:max_items]
        elif max_items is not None:
            items = items[-max_items:] if max_items > 0 else []
        return {pid: done.entry() for pid, done in items}

    def jobs_json(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """`GET /api/jobs`: (status code, body)."""
        wanted = [s for s in query.get("status", "").split(",") if s]
        bad = [s for s in wanted if s not in JOB_STATUSES]
        if bad:
            return 400, {
                "error": f"Invalid status value(s): {', '.join(bad)}. "
                f"Valid values: {', '.join(JOB_STATUSES)}"
            }
        try:
            limit = int(query["limit"]) if "limit" in query else None
            offset = int(query.get("offset", "0"))
        except ValueError:
            return 400, {"error": "limit must be a positive integer"}
        if limit is not None and limit <= 0:
            return 400, {"error": "limit must be a positive integer"}
        jobs = [j for j in self._all_jobs() if not wanted or j["status"] in wanted]
        if workflow := query.get("workflow_id"):
            jobs = [j for j in jobs if j.get("workflow_id") == workflow]
        key = query.get("sort_by", "created_at")
        reverse = query.get("sort_order", "desc") != "asc"
        if key == "execution_duration":
            jobs.sort(key=_duration, reverse=reverse)
        else:
            jobs.sort(key=lambda j: j["create_time"], reverse=reverse)
        total = len(jobs)
        page = jobs[offset : offset + limit] if limit is not None else jobs[offset:]
        return 200, {
            "jobs": page,
            "pagination": {
                "offset": offset,
                "limit": limit,
                "total": total,
                "has_more": offset + len(page) < total,
            },
        }

    def job_json(self, prompt_id: str) -> dict[str, Any] | None:
        done = self.history.get(prompt_id)
        if done is not None:
            job = _summary(done.item, done.job_status, done)
            job["outputs"] = done.outputs
            job["execution_status"] = done.status()
            job["workflow"] = {"prompt": done.item.prompt, "extra_data": done.item.as_list()[3]}
            return job
        for job in self._all_jobs():
            if job["id"] == prompt_id:
                return job
        return None

    def _all_jobs(self) -> list[dict[str, Any]]:
        jobs = [_summary(i, "pending", None) for i in self.pending]
        if self.running:
            jobs.append(_summary(self.running, "in_progress", None))
        jobs += [_summary(d.item, d.job_status, d) for d in self.history.values()]
        return jobs


def _summary(item: QueueItem, status: str, done: Finished | None) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": item.prompt_id,
        "status": status,
        "priority": item.number,
        "create_time": item.extra_data.get("create_time"),
    }
    if done is not None:
        job["execution_start_time"] = done.start_ms
        job["execution_end_time"] = done.end_ms
        errors = [m[1] for m in done.messages if m[0] == "execution_error"]
        if errors:
            job["execution_error"] = errors[0]
    outputs = done.outputs if done else {}
    job["outputs_count"] = sum(len(v) for o in outputs.values() for v in o.values())
    preview = _preview_output(outputs)
    if preview:
        job["preview_output"] = preview
    workflow = item.extra_data.get("extra_pnginfo", {}).get("workflow", {})
    if isinstance(workflow, dict) and "id" in workflow:
        job["workflow_id"] = workflow["id"]
    return job


def _preview_output(outputs: Mapping[str, Mapping[str, list[Any]]]) -> dict[str, Any] | None:
    """The first previewable output, preferring saved files (`type: output`) over previews."""
    found: list[dict[str, Any]] = []
    for node_id, ui in outputs.items():
        for media, items in ui.items():
            for it in items:
                if isinstance(it, dict) and "filename" in it:
                    found.append({**it, "nodeId": node_id, "mediaType": media})
    for it in found:
        if it.get("type") == "output":
            return it
    return found[0] if found else None


def _duration(job: Mapping[str, Any]) -> float:
    start, end = job.get("execution_start_time"), job.get("execution_end_time")
    return float(end - start) if start is not None and end is not None else -1.0
