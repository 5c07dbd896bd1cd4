"""Settings of the worker agent, from the environment (prefix CW_WORKER_); built once."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from queue_manager.contract.worker_api import MAX_BATCH_REPORTS


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CW_WORKER_", env_file=".env", extra="ignore")

    manager_url: AnyHttpUrl = Field(
        description="The queue manager, e.g. https://host/ over Tailscale"
    )
    token: SecretStr = Field(description="This worker's token (comfy-workshop worker-token create)")
    comfyui_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8188"), description="The ComfyUI next to this agent"
    )
    name: str = Field(default="", description="Shown on the dashboard; the token names the worker")
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    claim_wait_seconds: float = Field(default=20.0, gt=0, description="Long-poll length")
    progress_interval_seconds: float = Field(
        default=0.2, ge=0, description="At most one progress report per job per interval"
    )
    prefetch: int = Field(
        default=0,
        ge=0,
        le=1,  # the queue records two jobs per worker: the one its GPU runs, and the next
        description="Jobs kept waiting in ComfyUI's own queue behind the running one (0 or 1), "
        "so the GPU starts the next the instant the current ends (0: claim only when idle); "
        "one the policy wants first elsewhere is taken back before it starts. 1 for a room "
        "with one GPU; with several, a job handed early can wait behind a long one while "
        "another GPU is free",
    )
    report_batch: int = Field(
        default=MAX_BATCH_REPORTS,
        ge=1,
        le=MAX_BATCH_REPORTS,
        description="Reports (phases, progress) that queued up while the last request was on "
        "its way are sent together, at most this many (1: one request each)",
    )
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    job_timeout_seconds: float = Field(
        default=3600.0, gt=0, description="A prompt that runs longer fails"
    )
    reconnect_max_seconds: float = Field(default=30.0, gt=0)
    manager_retry_seconds: float = Field(
        default=120.0, gt=0, description="How long an output or an outcome is retried"
    )
    work_dir: Path = Field(default=Path("data/worker"), description="Scratch space for transfers")
    serve_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve mode (as `--serve PORT`): take jobs the queue manager pushes here "
        "(an endpoint of kind agent) instead of claiming them",
    )
    serve_host: str = Field(
        default="0.0.0.0",  # inside a container: reachable from its platform's balancer
        description="Where serve mode listens",
    )

    @field_validator("serve_port", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> WorkerSettings:
        if self.claim_wait_seconds + 5 > self.request_timeout_seconds:
            raise ValueError(
                "request_timeout_seconds must exceed claim_wait_seconds by at least 5 s, or every "
                "idle long poll would time out on our side first"
            )
        return self
