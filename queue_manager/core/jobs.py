"""The job: what a participant's Run click becomes, and everything we record about it."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from queue_manager.core.ids import JobId, UserId, WorkerId


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class Lane(enum.StrEnum):
    """Priority lanes, highest first. The order of the members is the claim order."""

    INSTRUCTOR = "instructor"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


LANES: tuple[Lane, ...] = tuple(Lane)
UI_FIELD = "ui:"  # stored job field `ui:<node id>`: that node's non-file UI output (JSON)


class PromptNode(TypedDict):
    """One node of an API-format ComfyUI prompt (checked by `prompts.parse_prompt`).

    Nodes may carry other keys (`_meta`, `cnr_id`); the prompt is stored and passed to ComfyUI
    exactly as the participant sent it (a missing `inputs` made `{}`), so nothing is lost by
    not typing them here.
    """

    class_type: str
    inputs: dict[str, JsonValue]


ApiPrompt = dict[str, PromptNode]


class JobError(BaseModel):
    """A structured failure: ComfyUI's `execution_error` fields or one of ours."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    node_id: str | None = None
    node_type: str | None = None
    details: JsonValue = None


class TimelineEntry(BaseModel):
    at: float
    to: JobStatus
    reason: str
    source: JobStatus | None = Field(default=None, alias="from")
    worker: WorkerId | None = None
    attempt: int | None = None

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class Progress(BaseModel):
    value: int = 0
    max: int = 0
    node: str | None = None


class JobHead(BaseModel):
    """A job without what it runs (prompt, workflow, requirements, timeline): what lists of
    jobs show (ComfyUI's `/api/jobs`, the workshop panel), read without parsing the graph."""

    id: JobId
    user: UserId
    lane: Lane
    status: JobStatus
    seq: int
    attempts: int = 0
    worker: WorkerId | None = None
    client_id: str | None = None
    created_at: float
    claimed_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    progress: Progress | None = None
    outputs: list[dict[str, JsonValue]] = Field(default_factory=list)
    # The node running now, and the non-file UI output of each node (PreviewAny's `text`,
    # ...), as the worker reported.
    node: str | None = None
    ui: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)
    error: JobError | None = None
    hold: str | None = None
    phase: str | None = None  # before ComfyUI starts it: e.g. "GPU starting, usually about 90 s"
    unvalidated: bool = False  # queued before any GPU catalogue was known to check it against
    workflow_id: str | None = None  # the page's workflow (`extra_pnginfo.workflow.id`)


class Job(JobHead):
    """A job as stored. `prompt` and `extra_data` are passed to ComfyUI unchanged."""

    prompt: ApiPrompt
    extra_data: dict[str, JsonValue] = Field(default_factory=dict)
    node_types: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    # ComfyUI's view of the run: the output nodes it will execute.
    targets: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _workflow_id_from_extra_data(self) -> Job:
        if self.workflow_id is None:
            self.workflow_id = workflow_id_of(self.extra_data)
        return self


def workflow_id_of(extra_data: Mapping[str, object]) -> str | None:
    """The id of the workflow the page ran (`extra_pnginfo.workflow.id`), if it sent one."""
    info = extra_data.get("extra_pnginfo")
    workflow = info.get("workflow") if isinstance(info, Mapping) else None
    wid = workflow.get("id") if isinstance(workflow, Mapping) else None
    return wid if isinstance(wid, str) else None
