"""One pulled job's reports to the queue manager while it runs: sent in order by a task of
their own, progress and previews thinned to what a person can follow."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from queue_manager.comfy.frames import Preview
from queue_manager.contract.worker_api import ReportType
from worker.errors import JobLost, ManagerUnavailable, WorkerUnknown
from worker.held import Held
from worker.manager_client import ManagerClient

log = logging.getLogger(__name__)


class Reports:
    """One job's reports of its run (started, executing, progress, previews), sent in order by
    a task of their own while the agent goes on reading ComfyUI: a slow answer from the queue
    manager delays no message (and no output copy) behind it. Any may be lost while the
    manager is away; a refusal (the job is no longer ours) stops the job."""

    def __init__(self, manager: ManagerClient, held: Held) -> None:
        self._manager, self._held = manager, held
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._task = asyncio.create_task(self._send(), name=f"reports {held.job.id}")

    def tell(self, kind: ReportType, data: dict[str, Any]) -> None:
        manager, job = self._manager, self._held.job
        self._queue.put_nowait(lambda: manager.report(job, kind, data))

    def preview(self, preview: Preview) -> None:
        manager, job = self._manager, self._held.job
        self._queue.put_nowait(lambda: manager.preview(job, preview.image, preview.mime))

    async def settled(self) -> None:
        """Every report so far has been answered (or lost)."""
        await self._queue.join()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.wait({self._task})

    async def _send(self) -> None:
        while True:
            call = await self._queue.get()
            try:
                await call()
            except ManagerUnavailable as exc:
                log.debug("job=%s: a report was lost: %s", self._held.job.id, exc)
            except (JobLost, WorkerUnknown) as exc:
                log.info("job=%s: the queue manager refused a report (%s)", self._held.job.id, exc)
                self._held.lose()
            except Exception:  # a report must never stop the run
                log.exception("job=%s: a report failed", self._held.job.id)
            finally:
                self._queue.task_done()


class ProgressRelay:
    """At most one progress report and one preview per interval; the latest wins (a fast
    sampler must not flood the queue manager), and the last progress is always sent."""

    def __init__(self, reports: Reports, interval: float) -> None:
        self._reports, self._interval = reports, interval
        self._sent_at = 0.0
        self._preview_at = 0.0
        self._pending: dict[str, Any] | None = None

    def offer_preview(self, preview: Preview) -> None:
        # Previews are only a glimpse: one dropped in favour of a newer one loses nothing.
        if time.monotonic() - self._preview_at >= self._interval:
            self._preview_at = time.monotonic()
            self._reports.preview(preview)

    def offer(self, data: dict[str, Any]) -> None:
        self._pending = data
        if time.monotonic() - self._sent_at >= self._interval:
            self.flush()

    def flush(self) -> None:
        if self._pending is not None:
            data, self._pending = self._pending, None
            self._sent_at = time.monotonic()
            self._reports.tell("job.progress", data)
