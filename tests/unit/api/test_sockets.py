"""`send_now`: a send run at once when it need not wait, finished by a task when it must."""

from __future__ import annotations

import asyncio

import pytest

from queue_manager.api.sockets import send_now


async def _write(log: list[str], until: asyncio.Future[str] | None = None) -> None:
    log.append("started")
    if until is not None:
        log.append(await until)
    log.append("written")


async def test_a_send_that_need_not_wait_is_done_on_return() -> None:
    log: list[str] = []
    assert send_now(_write(log)) is None
    assert log == ["started", "written"]


async def test_a_send_that_waits_is_finished_by_a_task_with_what_it_waited_for() -> None:
    log: list[str] = []
    writable: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = send_now(_write(log, writable))
    assert task is not None
    assert log == ["started"]
    writable.set_result("drained")
    await task
    assert log == ["started", "drained", "written"]


async def test_a_waiting_send_can_be_cancelled_where_it_waits() -> None:
    writable: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = send_now(_write([], writable))
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert writable.cancelled()


async def _fail(until: asyncio.Future[None] | None) -> None:
    if until is not None:
        await until
    raise ConnectionResetError("gone")


async def test_a_send_that_fails_at_once_raises_to_its_sender() -> None:
    with pytest.raises(ConnectionResetError):
        send_now(_fail(None))


async def test_a_send_that_fails_after_waiting_raises_to_whoever_awaits_it() -> None:
    writable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = send_now(_fail(writable))
    assert task is not None
    writable.set_result(None)
    with pytest.raises(ConnectionResetError):
        await task
