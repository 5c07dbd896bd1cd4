"""What the event stream announces: one enum of event names, and the sets derived from it.

Every change to a job, a worker or the room's controls is one event (the Lua scripts append it
in the same step as the change). The readers below decide by these sets, never by spelling the
names again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pydantic import JsonValue

from queue_manager.core.ids import JobId, UserId, WorkerId


class EventType(enum.StrEnum):
    # A job's lifecycle (see `lifecycle`).
    JOB_QUEUED = "job.queued"
    JOB_CLAIMED = "job.claimed"
    JOB_REQUEUED = "job.requeued"
    JOB_MOVED = "job.moved"  # moved to the front or to another lane
    JOB_COMPLETED = "job.completed"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    # What the GPU reports while it runs a job (ComfyUI's own phases).
    JOB_STARTED = "job.started"
    JOB_EXECUTING = "job.executing"
    JOB_PROGRESS = "job.progress"
    JOB_EXECUTED = "job.executed"
    JOB_PREVIEW = "job.preview"
    # Before ComfyUI starts: what the GPU is doing first (a serverless endpoint's cold start).
    JOB_PHASE = "job.phase"
    # Workers coming, going, draining.
    WORKER_JOINED = "worker.joined"
    WORKER_ONLINE = "worker.online"
    WORKER_DRAINING = "worker.draining"
    WORKER_LOST = "worker.lost"
    WORKER_REMOVED = "worker.removed"
    # A push endpoint's status changed (data: `name`).
    ENDPOINT = "endpoint"
    # The room's controls (pause, limits, broadcast, a user's pause).
    CONTROL = "control"
    # An account's sessions ended, or its password or role changed: its open sockets check
    # again who they are (data: `reason`).
    SIGNED_OUT = "account.signed_out"
    # Room-wide pushes to every participant's page (the workshop extension), sent by the
    # instructor's use cases through `announce`; they name no user and carry nobody's files.
    WORKFLOW_SENT = "workshop.open"  # open this workflow in every page (data: which one)
    WORKFLOWS_CHANGED = "workshop.workflows"  # the published workflows changed
    OUTPUT_SHOWN = "workshop.showcase"  # an output shown to everyone, or no longer shown


# A job has ended; nothing more happens to it.
FINAL = frozenset({EventType.JOB_COMPLETED, EventType.JOB_FAILED, EventType.JOB_CANCELLED})
# A job was put in, taken out of, or taken from the queue: ComfyUI's page re-reads its queue
# (the server sends `status`).
QUEUE_CHANGES = FINAL | {EventType.JOB_QUEUED, EventType.JOB_CLAIMED, EventType.JOB_REQUEUED}
# Anything that can change someone's place in the queue, or what the room allows.
QUEUE_MOVES = QUEUE_CHANGES | {EventType.JOB_MOVED, EventType.CONTROL, EventType.WORKER_JOINED}
# What the workshop panel shows (a place in the queue, a phase) may have changed.
PHASE_CHANGES = QUEUE_MOVES | {EventType.JOB_STARTED, EventType.JOB_PROGRESS, EventType.JOB_PHASE}
# What a worker may report about the job it holds (the rest are ours to announce).
REPORTS = frozenset(
    {
        EventType.JOB_STARTED,
        EventType.JOB_EXECUTING,
        EventType.JOB_PROGRESS,
        EventType.JOB_EXECUTED,
        EventType.JOB_PHASE,
    }
)
# Delivered to every subscription whatever its user, and forwarded by a participant's socket
# as `{"type", "data"}` only once the page's extension asked for workshop pushes.
ROOM_WIDE = frozenset(
    {EventType.WORKFLOW_SENT, EventType.WORKFLOWS_CHANGED, EventType.OUTPUT_SHOWN}
)
# Only the newest matters: a newer one replaces an older one still waiting for a slow reader.
COALESCED = frozenset({EventType.JOB_PROGRESS, EventType.JOB_PREVIEW})


@dataclass(frozen=True, slots=True)
class Event:
    id: str  # the stream entry id: orders events and resumes a reader
    type: EventType
    at: float
    job: JobId | None = None
    user: UserId | None = None
    worker: WorkerId | None = None
    data: dict[str, JsonValue] = field(default_factory=dict)
