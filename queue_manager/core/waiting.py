"""Waiting for the first of several things (asyncio's own primitives, no I/O): what the pull
agent and a push slot wait on while a job runs (its run, a lost lease, a take-back)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def first_done(*waits: Awaitable[Any]) -> None:
    """Return when the first of `waits` is done; the coroutines among them are cancelled (a
    task or future passed in is left running)."""
    made = [asyncio.ensure_future(w) for w in waits if not isinstance(w, asyncio.Future)]
    given = [w for w in waits if isinstance(w, asyncio.Future)]
    try:
        await asyncio.wait({*made, *given}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in made:
            task.cancel()
