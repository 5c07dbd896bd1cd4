"""The simulator's queue and history, and their JSON views (`/queue`, `/history`, `/api/jobs`)
in the shapes a real ComfyUI 0.25.0 answers (captures/comfyui-0.25.0/get_*)."""

from __future__ import annotations

import heapq
import itertools
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
    # Submission order: breaks create_time ties (same millisecond) in the jobs API.
    seq: int = field(default_factory=itertools.count().__next__)

    def __lt__(self, other: QueueItem) -> bool:
        # ComfyUI's queue is a heap of (number, prompt_id, ...) tuples.
        return (self.number, self.prompt_id) < (other.number, other.prompt_id)

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
    # A heap, as ComfyUI keeps it: `GET /queue` shows it in heap order, not sorted.
    pending: list[QueueItem] = field(default_factory=list)
    running: QueueItem | None = None
    history: OrderedDict[str, Finished] = field(default_factory=OrderedDict)

    def next_number(self) -> int:
        n = self.counter
        self.counter += 1
        return n

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    def put(self, item: QueueItem) -> None:
        heapq.heappush(self.pending, item)

    def take(self) -> QueueItem | None:
        if not self.pending:
            return None
        item = heapq.heappop(self.pending)
        self.running = item
        return item

    def finish(self, done: Finished) -> None:
        self.running = None
        self.history[done.item.prompt_id] = done
        while len(self.history) > MAX_HISTORY:
            self.history.popitem(last=False)

    def delete_pending(self, ids: Iterable[str]) -> bool:
        """Remove pending items by prompt id, as ComfyUI does (pop, then re-heapify);
        whether anything was removed."""
        removed = False
        for prompt_id in ids:
            for index, item in enumerate(self.pending):
                if item.prompt_id == prompt_id:
                    self.pending.pop(index)
                    heapq.heapify(self.pending)
                    removed = True
                    break
        return removed

    # -- views ----------------------------------------------------------------------------

    def queue_json(self) -> dict[str, Any]:
        return {
            "queue_running": [self.running.as_list()] if self.running else [],
            "queue_pending": [i.as_list() for i in self.pending],
        }

    def history_json(self, max_items: int | None, offset: int | None) -> dict[str, Any]:
        """ComfyUI's `get_history`: without an offset (or a negative one) `max_items` means the
        newest ones; with one, up to `max_items` from there (at least one is always taken)."""
        start = -1 if offset is None else offset
        if start < 0 and max_items is not None:
            start = len(self.history) - max_items
        out: dict[str, Any] = {}
        for index, (pid, done) in enumerate(self.history.items()):
            if index >= start:
                out[pid] = done.entry()
                if max_items is not None and len(out) >= max_items:
                    break
        return out

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
        order = {pid: i for i, pid in enumerate(self._submission_order())}
        if key == "execution_duration":
            jobs.sort(key=lambda j: (_duration(j), order[j["id"]]), reverse=reverse)
        else:
            jobs.sort(key=lambda j: (j["create_time"], order[j["id"]]), reverse=reverse)
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

    def _submission_order(self) -> list[str]:
        items = [*self.pending, *([self.running] if self.running else [])]
        items += [done.item for done in self.history.values()]
        return [i.prompt_id for i in sorted(items, key=lambda i: i.seq)]

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
