"""What differs between the endpoint kinds: how their catalogue is learnt and how one job runs
there. The slots and the dispatcher are the same for all."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, assert_never

from queue_manager.core.endpoints import EndpointKind
from queue_manager.push.agent import AgentRun
from queue_manager.push.client import EndpointClient
from queue_manager.push.comfyui import ComfyUIRun
from queue_manager.push.handle import JobHandle
from queue_manager.push.monitor import EndpointMonitor
from queue_manager.push.runpod import RunPodRun
from queue_manager.settings import Settings


class EndpointRun(Protocol):
    """One claimed job on an endpoint."""

    id: str
    handle: JobHandle
    # Whether the slot renews the job's lease while it runs; False once another renews it
    # (our agent in a serverless image heartbeats its own job).
    renews_lease: bool
    # Set once the endpoint is done executing it: what is left (copying its outputs,
    # reporting the outcome) runs beside the slot's next job.
    executed: asyncio.Event
    # Set once it waits in the endpoint's own queue (kind comfyui): the slot may post its next.
    posted: asyncio.Event
    # Posted while another job of the slot's was on the endpoint: it waits there (prefetch).
    behind: bool

    @property
    def started(self) -> bool:
        """The endpoint began executing it (as far as the slot has heard)."""

    async def take_back(self) -> bool:
        """Take it out of the endpoint's queue before it starts (a take-back); True when it
        is out and never ran, False when it started (it runs on)."""

    async def run(self) -> None:
        """Run it to its end: complete or fail the job, or raise an outcome (`outcomes`)."""

    async def forget(self) -> None:
        """Take it off the endpoint (cancelled, timed out, given back); best effort."""


# A cheap request each kind answers when it is up: what a failing endpoint is asked until it
# answers again (`slot.Slot`).
PROBES: dict[EndpointKind, str] = {
    EndpointKind.COMFYUI: "/api/system_stats",
    EndpointKind.AGENT: "/healthz",
    EndpointKind.RUNPOD: "/health",
}


def new_run(
    kind: EndpointKind,
    handle: JobHandle,
    client: EndpointClient,
    monitor: EndpointMonitor,
    object_info: Mapping[str, Any],
    settings: Settings,
) -> EndpointRun:
    match kind:
        case EndpointKind.COMFYUI:
            return ComfyUIRun(handle, client, monitor, object_info, settings)
        case EndpointKind.AGENT:
            return AgentRun(handle, client, monitor, settings)
        case EndpointKind.RUNPOD:
            return RunPodRun(handle, client, monitor, object_info, settings)
        case _:  # every kind is dispatched: mypy checks that none is left out
            assert_never(kind)
