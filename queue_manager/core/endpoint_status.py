"""How a push endpoint is doing, as the dashboard shows it, and what a participant whose job
waits on its cold start is told (pure).

An endpoint is `cold` until it first answers (a serverless one scaled to zero), `starting`
while calls are refused or time out and its cold-start timeout has not run out, `ready` when
it answers and runs nothing of ours, `busy` while it runs our jobs, and `failing` (with the
reason) when a cold start outlasted its timeout or it answers with errors.
"""

from __future__ import annotations

import enum
import statistics
from dataclasses import dataclass

# Measured cold starts kept per endpoint: enough for a stable median, recent enough to follow a
# change of image or GPU type.
KEPT_COLD_STARTS = 10
# Said before anything was measured: serverless ComfyUI images start in about 2-5 minutes.
UNMEASURED = "GPU starting (a cold start usually takes 2-5 minutes)"


class EndpointPhase(enum.StrEnum):
    COLD = "cold"
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    FAILING = "failing"


@dataclass(frozen=True)
class EndpointStatus:
    name: str
    phase: EndpointPhase = EndpointPhase.COLD
    reason: str = ""
    since: float = 0.0
    running: int = 0  # jobs of ours on it now
    cold_starts: tuple[float, ...] = ()  # measured durations in seconds, oldest first

    @property
    def last_cold_start(self) -> float | None:
        return self.cold_starts[-1] if self.cold_starts else None

    def shown(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.phase.value,
            "reason": self.reason,
            "since": self.since,
            "running": self.running,
            "last_cold_start": self.last_cold_start,
            "typical_cold_start": typical_cold_start(self.cold_starts),
        }


def typical_cold_start(samples: tuple[float, ...]) -> float | None:
    """The median of the measured cold starts (None before the first)."""
    return statistics.median(samples) if samples else None


def with_cold_start(samples: tuple[float, ...], seconds: float) -> tuple[float, ...]:
    return (*samples, round(seconds, 1))[-KEPT_COLD_STARTS:]


def starting_detail(samples: tuple[float, ...]) -> str:
    """What a participant whose job waits on a cold start reads."""
    typical = typical_cold_start(samples)
    if typical is None:
        return UNMEASURED
    return f"GPU starting, usually about {_duration(typical)}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"
