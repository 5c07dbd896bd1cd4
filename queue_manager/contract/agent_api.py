"""The push API of our agent in a serverless image (`comfy-workshop worker --serve PORT`): what
the queue manager's `agent` endpoints send it and read back. Every call but the health check
carries `Authorization: Bearer <the agent's CW_WORKER_TOKEN>`.

    POST /jobs                 a `PushedJob`: 202 taken, 409 busy with another job, 503 not
                               ready (its ComfyUI not up yet, or draining), 400, 401
    GET  /jobs/{id}            a `PushedJobState` (200), or 404: not here
    POST /jobs/{id}/cancel     stop it here and report nothing more (200, also when not here)
    GET  /api/object_info      its ComfyUI's node catalogue (also at /object_info)
    GET  /healthz              200 when its ComfyUI answers and it takes jobs, else 503; open
                               to anyone, but 401 to a caller whose token is not its own

A taken job is reported over the worker API (`worker_api`) with the job's lease token.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from queue_manager.contract.worker_api import Assignment

JOBS = "/jobs"
# The phase an agent reports as soon as it took a pushed job: the participant reads it, and
# the queue manager looks for it after a push whose answer was lost (not pushing twice).
TAKEN_PHASE = "on the GPU: preparing the job"


class PushedJob(BaseModel):
    assignment: Assignment
    token: str = Field(min_length=1, max_length=4096, description="The attempt's lease token")


class PushedJobState(BaseModel):
    id: str
    attempt: int
    state: Literal["running", "finished"]
