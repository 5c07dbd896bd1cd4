"""A clock for the stores and the service that moves only when a test says so."""

from __future__ import annotations


class FakeClock:
    """Time that only moves when a test says so (leases expire on demand, never by waiting)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
