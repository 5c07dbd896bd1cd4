"""Waiting for the first of several things: it returns at the first, stops the waits it made
itself, and leaves a task it was given running."""

from __future__ import annotations

import asyncio

from queue_manager.core.waiting import first_done


async def test_the_first_done_ends_the_wait_and_the_others_made_for_it_stop() -> None:
    fired, never = asyncio.Event(), asyncio.Event()
    given = asyncio.create_task(never.wait())
    waiting_on_never = never.wait()
    fired.set()
    await first_done(fired.wait(), waiting_on_never, given)
    await asyncio.sleep(0)  # let the cancellation land
    assert not given.done()  # a task passed in is the caller's: left running
    given.cancel()
    await asyncio.gather(given, return_exceptions=True)


async def test_a_task_that_ends_first_ends_the_wait() -> None:
    never = asyncio.Event()
    task = asyncio.create_task(asyncio.sleep(0))
    await first_done(never.wait(), task)
    assert task.done()
