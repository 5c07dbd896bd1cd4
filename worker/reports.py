"""One pulled job's reports to the queue manager while it runs: sent in order by a task of
their own, progress and previews thinned to what a person can follow."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from queue_manager.comfy.frames import Preview
from queue_manager.contract.worker_api import MAX_BATCH_BYTES, MAX_BATCH_REPORTS, ReportType
from worker.errors import JobLost, ManagerUnavailable, WorkerUnknown
from worker.held import Held
from worker.manager_client import ManagerClient

log = logging.getLogger(__name__)


# One queued report: (type, data), or a preview image.
Item = tuple[ReportType, dict[str, Any]] | Preview


class Reports:
    """One job's reports of its run (started, executing, progress, previews), sent in order by
    a task of their own while the agent goes on reading ComfyUI: a slow answer from the queue
    manager delays no message (and no output copy) behind it. What queued up meanwhile goes
    in one request (`events/batch`), so a page hears the last of a burst after one round trip,
    not one per report; of several queued previews only the newest is sent. Any may be lost
    while the manager is away; a refusal (the job is no longer ours) stops the job."""

    def __init__(self, manager: ManagerClient, held: Held, batch: int = MAX_BATCH_REPORTS) -> None:
        self._manager, self._held, self._batch = manager, held, batch
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._task = asyncio.create_task(self._send(), name=f"reports {held.job.id}")

    def tell(self, kind: ReportType, data: dict[str, Any]) -> None:
        self._queue.put_nowait((kind, data))

    def preview(self, preview: Preview) -> None:
        self._queue.put_nowait(preview)

    async def settled(self) -> None:
        """Every report so far has been answered (or lost)."""
        await self._queue.join()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.wait({self._task})

    async def _send(self) -> None:
        while True:
            items = [await self._queue.get()]
            while not self._queue.empty() and len(items) < self._batch:
                items.append(self._queue.get_nowait())
            try:
                for group in batches(items, self._batch):
                    if self._held.lost.is_set():  # refused: the rest would be refused too
                        break
                    await self._deliver(group)
            except Exception:  # a report must never stop the reports after it
                log.exception("job=%s: reports failed", self._held.job.id)
            finally:
                for _ in items:
                    self._queue.task_done()

    async def _deliver(self, group: Preview | list[tuple[ReportType, dict[str, Any]]]) -> None:
        job = self._held.job
        try:
            if isinstance(group, Preview):
                await self._manager.preview(job, group.image, group.mime)
            else:
                await self._manager.report_many(job, group)
        except ManagerUnavailable as exc:
            log.debug("job=%s: a report was lost: %s", job.id, exc)
        except (JobLost, WorkerUnknown) as exc:
            log.info("job=%s: the queue manager refused a report (%s)", job.id, exc)
            self._held.lose()
        except Exception:  # a report must never stop the run
            log.exception("job=%s: a report failed", job.id)


def batches(
    items: list[Item], most: int = MAX_BATCH_REPORTS
) -> list[Preview | list[tuple[ReportType, dict[str, Any]]]]:
    """Queued items as requests, in order: each run of reports together (`most` of them, up
    to about MAX_BATCH_BYTES of data), a preview alone, and only the newest of the previews
    (an older one would only flash past)."""
    newest = max((i for i, item in enumerate(items) if isinstance(item, Preview)), default=-1)
    out: list[Preview | list[tuple[ReportType, dict[str, Any]]]] = []
    size = 0
    for i, item in enumerate(items):
        if isinstance(item, Preview):
            if i == newest:
                out.append(item)
            continue
        n = len(json.dumps(item[1], separators=(",", ":"), default=str))
        last = out[-1] if out else None
        if isinstance(last, list) and len(last) < most and size + n <= MAX_BATCH_BYTES:
            last.append(item)
            size += n
        else:
            out.append([item])
            size = n
    return out


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
