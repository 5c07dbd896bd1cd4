"""The reliability suite: faults that kill real processes, the attack table, bounded fuzzing
and the burst. Its tests use the integration fixtures (a client of the private Redis, settings
for it, a clock that moves only when told)."""

from tests.integration.conftest import clock, redis, settings

__all__ = ["clock", "redis", "settings"]
