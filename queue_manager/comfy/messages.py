"""Our job events as the ComfyUI WebSocket messages a participant's page expects (pure).

One `SocketView` per open socket remembers what that page has been told about each job (the
node running, the nodes finished), so that `progress_state` snapshots and `executing` frames
come out in ComfyUI's order (PROTOCOL.md section 7):

    execution_start, execution_cached, (progress_state, executing, progress*, preview*,
    executed?)*, execution_success | execution_error | execution_interrupted,
    status, executing {node: null}

Per-job messages go only to the socket whose `clientId` submitted the job; a job queued
without a client id has its progress and previews shown to every socket of its user, as
ComfyUI broadcasts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from queue_manager.comfy.frames import FORMAT_OF_MIME, preview_frame
from queue_manager.comfy.history import INTERRUPTED, ms
from queue_manager.core.events import Event, EventType

Message = dict[str, Any]


def status(queue_remaining: int, sid: str | None = None) -> Message:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return {"type": "status", "data": data}


@dataclass
class _Run:
    node: str | None = None
    finished: list[str] = field(default_factory=list)


@dataclass
class SocketView:
    """What one page knows; `translate` turns an event of its user into its messages."""

    sid: str
    preview_metadata: bool = False
    runs: dict[str, _Run] = field(default_factory=dict)

    def mine(self, client_id: str | None) -> bool:
        return client_id == self.sid

    def translate(self, event: Event, client_id: str | None) -> list[Message]:
        """JSON messages for `event` (of a job whose submitting client is `client_id`);
        `status` and previews are made by the caller (they need a read)."""
        job = str(event.job)
        own = self.mine(client_id)
        data = event.data
        at = ms(event.at)
        if event.type == EventType.JOB_STARTED and own:
            self.runs[job] = _Run()
            return [
                {"type": "execution_start", "data": {"prompt_id": job, "timestamp": at}},
                {
                    "type": "execution_cached",
                    "data": {"nodes": [], "prompt_id": job, "timestamp": at},
                },
            ]
        if event.type == EventType.JOB_EXECUTING and own:
            run = self.runs.setdefault(job, _Run())
            if run.node is not None and run.node not in run.finished:
                run.finished.append(run.node)
            run.node = str(data.get("node"))
            return [
                self._progress_state(job, run),
                {
                    "type": "executing",
                    "data": {"node": run.node, "display_node": run.node, "prompt_id": job},
                },
            ]
        if event.type == EventType.JOB_PROGRESS and (own or client_id is None):
            node = data.get("node") or self.runs.get(job, _Run()).node
            return [
                {
                    "type": "progress",
                    "data": {
                        "value": data.get("value", 0),
                        "max": data.get("max", 1),
                        "prompt_id": job,
                        "node": node,
                    },
                }
            ]
        if event.type == EventType.JOB_EXECUTED and own:
            return [executed(job, data)]
        return []

    def finish(self, event: Event, client_id: str | None, error: Any) -> list[Message]:
        """The closing messages of a job that ended (before `status` and `executing: null`
        only the outcome; the caller sends status between them)."""
        job = str(event.job)
        run = self.runs.pop(job, _Run())
        if not self.mine(client_id):
            if (
                event.type == EventType.JOB_CANCELLED
                and client_id is None
                and data_was_running(event)
            ):
                return [interrupted(job, event, run, error)]
            return []
        at = ms(event.at)
        if event.type == EventType.JOB_COMPLETED:
            return [{"type": "execution_success", "data": {"prompt_id": job, "timestamp": at}}]
        if event.type == EventType.JOB_CANCELLED:
            return [interrupted(job, event, run, error)] if data_was_running(event) else []
        if event.type == EventType.JOB_FAILED:
            err = error if isinstance(error, dict) else {}
            if err.get("type") == INTERRUPTED:
                return [interrupted(job, event, run, err)]
            raw = err.get("details")
            details: dict[str, Any] = raw if isinstance(raw, dict) else {}
            return [
                {
                    "type": "execution_error",
                    "data": {
                        "prompt_id": job,
                        "node_id": err.get("node_id") or run.node,
                        "node_type": err.get("node_type"),
                        "executed": list(details.get("executed") or run.finished),
                        "exception_message": err.get("message", "the job failed"),
                        "exception_type": details.get("exception_type") or err.get("type", ""),
                        "traceback": [],
                        "current_inputs": {},
                        "current_outputs": {},
                        "timestamp": at,
                    },
                }
            ]
        return []

    def preview(self, job: str, client_id: str | None, mime: str, image: bytes) -> bytes | None:
        """The binary preview frame in the format this page negotiated, or None."""
        if not (self.mine(client_id) or client_id is None):
            return None
        fmt = FORMAT_OF_MIME.get(mime, "JPEG")
        if not self.preview_metadata:
            return preview_frame(image, fmt, None)
        node = self.runs.get(job, _Run()).node
        meta = {
            "node_id": node,
            "prompt_id": job,
            "display_node_id": node,
            "parent_node_id": None,
            "real_node_id": node,
        }
        return preview_frame(image, fmt, meta)

    def _progress_state(self, job: str, run: _Run) -> Message:
        nodes = {n: _node_state(job, n, "finished") for n in run.finished}
        if run.node is not None:
            nodes[run.node] = _node_state(job, run.node, "running")
        return {"type": "progress_state", "data": {"prompt_id": job, "nodes": nodes}}


def data_was_running(event: Event) -> bool:
    return event.data.get("was") == "running"


def done(job: str) -> Message:
    """ComfyUI's reliable end marker: `executing` with `node: null`."""
    return {"type": "executing", "data": {"node": None, "display_node": None, "prompt_id": job}}


def executed(job: str, data: dict[str, Any]) -> Message:
    """`executed` with the outputs as stored for this user (names may differ from the
    worker's: they resolve through this user's `/api/view`)."""
    node = str(data.get("node"))
    output: dict[str, Any] = {}
    other = data.get("output")
    if isinstance(other, dict):
        output.update(other)
    for item in data.get("files") or []:
        if isinstance(item, dict):
            media = str(item.get("media", "images"))
            output.setdefault(media, []).append(
                {k: item.get(k) for k in ("filename", "subfolder", "type")}
            )
    return {
        "type": "executed",
        "data": {"node": node, "display_node": node, "output": output, "prompt_id": job},
    }


def interrupted(job: str, event: Event, run: _Run, error: Any) -> Message:
    err = error if isinstance(error, dict) else {}
    return {
        "type": INTERRUPTED,
        "data": {
            "prompt_id": job,
            "node_id": err.get("node_id") or run.node,
            "node_type": err.get("node_type"),
            "executed": list(run.finished),
            "timestamp": ms(event.at),
        },
    }


def _node_state(job: str, node: str, state: str) -> dict[str, Any]:
    return {
        "value": 1 if state == "finished" else 0,
        "max": 1,
        "state": state,
        "node_id": node,
        "prompt_id": job,
        "display_node_id": node,
        "parent_node_id": None,
        "real_node_id": node,
    }
