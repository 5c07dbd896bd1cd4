"""Background-task discipline: a loop that survives network errors must still stop when asked."""

from __future__ import annotations

import asyncio


def reraise_if_cancelled() -> None:
    """Call in an `except` for network errors inside a retry loop.

    A cancellation that lands inside redis-py's read timeout can surface as a TimeoutError
    (seen after a Redis restart); treating it as a network error would keep alive a task that
    was asked to stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
