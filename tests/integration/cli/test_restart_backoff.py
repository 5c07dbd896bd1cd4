"""How long `up` waits before restarting a child that died: doubling from 0.5 s to 10 s, back
to 0.5 s once the child had run for a minute."""

from __future__ import annotations

import pytest

from queue_manager.cli.supervision import Backoff


@pytest.mark.parametrize(
    ("previous", "uptime", "delay"),
    [
        (None, 0.1, 0.5),  # first death
        (0.5, 0.1, 1.0),
        (1.0, 2.0, 2.0),
        (4.0, 59.0, 8.0),
        (8.0, 1.0, 10.0),
        (10.0, 1.0, 10.0),  # capped
        (10.0, 60.0, 0.5),  # a minute of health forgives the past
        (None, 3600.0, 0.5),
    ],
)
def test_restart_delay_doubles_up_to_a_cap_and_resets_after_a_healthy_minute(
    previous: float | None, uptime: float, delay: float
) -> None:
    assert Backoff().after(previous, uptime) == delay
