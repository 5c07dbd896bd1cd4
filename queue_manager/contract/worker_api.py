"""The worker API (`/worker/v1`): every message a GPU agent and the queue manager exchange.

The agent sends the bodies and query parameters below and reads the answers; the queue
manager's routes declare exactly these models. A refusal carries an `ErrorCode` in
`error.code`, which the agent acts on (a lost lease stops the job; an unknown worker
registers again), rather than parsing messages or exception names.
"""

from __future__ import annotations

import enum
import math
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field, JsonValue

from queue_manager.core.jobs import JobError

PREFIX = "/worker/v1"

# The phase an agent reports for a job it put in its ComfyUI's queue behind the one running
# there: the participant and the dashboard show it as the GPU's next job.
NEXT_ON_GPU_PHASE = "next on this GPU, starting the moment the job before it ends"

# What a worker may report about the job it holds (core.events.REPORTS; the rest are ours).
ReportType = Literal["job.started", "job.executing", "job.progress", "job.executed", "job.phase"]
PreviewMime = Literal["image/jpeg", "image/png", "image/webp"]
OutputType = Literal["output", "temp"]


class ErrorCode(enum.StrEnum):
    """Why the queue manager refused a worker's request (`error.code` of the answer)."""

    LEASE_LOST = "lease_lost"  # 409: the attempt is no longer this worker's: stop the job
    JOB_NOT_FOUND = "job_not_found"  # 404: no such job (it is not this worker's either)
    WORKER_UNKNOWN = "worker_unknown"  # 404: register again
    WORKER_UNAVAILABLE = "worker_unavailable"  # 409: draining or removed: claim nothing
    TOO_LARGE = "too_large"  # 413
    UNSAFE_NAME = "unsafe_name"  # 400: a file name that would leave the user's folder
    INVALID = "invalid"  # 400/422: a malformed request
    UNAVAILABLE = "unavailable"  # 503: the queue store is away; try again


T = TypeVar("T")


def _store_can_hold(value: T) -> T:
    """`value`, if every number in it fits a double. The store's Lua scripts read a worker's
    JSON with cjson: a number past a double's range (`1e400`) decodes as inf, which cjson then
    cannot encode, and the request failed with a 503 as if Redis were down. (2**64 seeds fit.)"""
    pending: list[object] = [value.model_dump() if isinstance(value, BaseModel) else value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, int | float) and not _finite(item):
            raise ValueError("a number too large for the queue to keep")
    return value


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int past a double's range
        return False


# JSON a worker sends that the store keeps, and attempt numbers (exact in a Lua number).
StoredJson = Annotated[dict[str, JsonValue], AfterValidator(_store_can_hold)]
AttemptNumber = Annotated[int, Field(ge=0, le=2**53)]


class Registration(BaseModel):
    node_types: list[str] = Field(min_length=1, max_length=50_000)
    models: list[str] | None = Field(default=None, max_length=200_000)
    info: StoredJson = {}


class Assignment(BaseModel):
    """A claimed job (`POST /claim`). The prompt and extra_data are the participant's JSON,
    passed to ComfyUI as they are."""

    id: str
    attempt: int
    user: str
    lane: str
    client_id: str | None = None
    prompt: dict[str, Any]
    extra_data: dict[str, Any] = {}


class Heartbeat(BaseModel):
    job_id: str | None = None
    attempt: AttemptNumber = 0


class SignalItem(BaseModel):
    """`stop`: the job was cancelled, stop it now; `back`: it was handed early and a job the
    policy puts first wants its place: return it (`/give-back`) unless it has started."""

    action: Literal["stop", "back"]
    job: str


class Signals(BaseModel):
    """The answer of `POST /signals` (a long poll): what the queue manager asks of this
    worker about the jobs it holds; empty when the wait ran out."""

    signals: list[SignalItem] = []


class GivenBack(BaseModel):
    """The answer of `/give-back`: False when the job had started meanwhile (keep running it)."""

    returned: bool


class Report(BaseModel):
    attempt: AttemptNumber
    type: ReportType
    data: StoredJson = {}


# The most reports one `events/batch` request carries, and about the most bytes of their data
# (a request may hold 2 MiB; one report alone may be that large and goes alone).
MAX_BATCH_REPORTS = 64
MAX_BATCH_BYTES = 2**20


class ReportItem(BaseModel):
    type: ReportType
    data: StoredJson = {}


class ReportBatch(BaseModel):
    """The body of `POST /jobs/{id}/events/batch`: reports of one attempt that queued up on the
    worker while its last request was on its way, applied in order (across a tailnet every
    request is a round trip, and the page hears each report only after those before it)."""

    attempt: AttemptNumber
    reports: Annotated[list[ReportItem], Field(min_length=1, max_length=MAX_BATCH_REPORTS)]


class Attempt(BaseModel):
    """The body of `/complete` and `/release`: which attempt; the outcome is the route. A
    completed job's outputs are the files the queue manager stored for that attempt."""

    attempt: AttemptNumber


class Failure(BaseModel):
    attempt: AttemptNumber
    error: Annotated[JobError, AfterValidator(_store_can_hold)]


class OutputUpload(BaseModel):
    """Query parameters of `PUT /jobs/{id}/outputs` (the body is the file's bytes): the name
    the worker's ComfyUI gave the file, and where it belongs in ComfyUI's history."""

    attempt: AttemptNumber
    filename: str
    subfolder: str = ""
    type: OutputType = "output"
    node_id: str = ""
    media: str = Field(default="images", pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class StoredOutput(BaseModel):
    """Where the queue manager stored an output, in the user's folder."""

    filename: str
    subfolder: str
    type: OutputType
    size: int
    node_id: str = ""
    media: str = "images"


class ErrorDetail(BaseModel):
    type: str
    message: str
    code: ErrorCode | None = None


class ErrorAnswer(BaseModel):
    """The body of every refusal (ComfyUI's error shape, plus our `code`)."""

    error: ErrorDetail
