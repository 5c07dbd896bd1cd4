"""One endpoint's status as its slots see it (answers, refusals, jobs), written to the room
whenever it changes (`core.endpoint_status`)."""

from __future__ import annotations

import dataclasses
import logging

from queue_manager.core.clock import Clock
from queue_manager.core.endpoint_status import (
    EndpointPhase,
    EndpointStatus,
    starting_detail,
    with_cold_start,
)
from queue_manager.service.queue import STORE_OUTAGES, QueueService

log = logging.getLogger(__name__)

# Refusals shorter than this are a blip, not a cold start worth measuring.
_MEASURED_FROM = 0.2


class EndpointMonitor:
    def __init__(self, service: QueueService, status: EndpointStatus, clock: Clock) -> None:
        self._service = service
        self._clock = clock
        self._status = status
        self._answered = status.phase in (EndpointPhase.READY, EndpointPhase.BUSY)
        self._down_since: float | None = None
        self._failing = ""
        self._running = 0

    def now(self) -> float:
        return self._clock()

    @property
    def starting_detail(self) -> str:
        """What a participant waiting on this endpoint's cold start reads."""
        return starting_detail(self._status.cold_starts)

    @property
    def is_failing(self) -> bool:
        """A job came back from it (cold start past its timeout, errors, outputs missing)
        and it has not answered since."""
        return bool(self._failing)

    async def answered(self) -> None:
        if self._down_since is not None:
            took = self._clock() - self._down_since
            if took >= _MEASURED_FROM:
                cold = with_cold_start(self._status.cold_starts, took)
                self._status = dataclasses.replace(self._status, cold_starts=cold)
                log.info("endpoint=%s answered after %.1fs (cold start)", self._status.name, took)
        if self._down_since is not None or self._failing or not self._answered:
            self._down_since, self._failing, self._answered = None, "", True
            await self._publish("")

    async def down(self, reason: str, since: float | None = None) -> None:
        """A call was refused or timed out, or is held unanswered (since `since`): the
        endpoint is (re)starting. The cold start is measured from then to its next answer."""
        if self._down_since is None:
            self._down_since = self._clock() if since is None else since
            await self._publish(reason)

    async def failing(self, reason: str) -> None:
        """Shown until the next answer; a cold start under way is still measured to it."""
        self._failing = reason
        await self._publish(reason)

    async def job_started(self) -> None:
        self._running += 1
        await self._publish(self._status.reason)

    async def job_ended(self) -> None:
        self._running = max(0, self._running - 1)
        await self._publish(self._status.reason)

    def _phase(self) -> EndpointPhase:
        if self._failing:
            return EndpointPhase.FAILING
        if self._down_since is not None:
            return EndpointPhase.STARTING
        if self._running:
            return EndpointPhase.BUSY
        return EndpointPhase.READY if self._answered else EndpointPhase.COLD

    async def _publish(self, reason: str) -> None:
        phase = self._phase()
        before = self._status
        since = before.since if phase is before.phase else self._clock()
        self._status = dataclasses.replace(
            before, phase=phase, reason=reason, since=since, running=self._running
        )
        try:
            await self._service.set_endpoint_status(self._status, before)
        except STORE_OUTAGES as exc:  # shown again at the next change
            log.warning("endpoint=%s status not saved: %s", self._status.name, exc)
