"""Time as the rest of the code receives it: a function returning seconds since the epoch
(`time.time` in production, a fake one in tests), passed in, never read from a global."""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
