"""What the room is making: the instructor's gallery of every participant's outputs, and the
one output the instructor shows to everyone.

Every file is reached the same way: the job's recorded output (never a name from a request),
checked to be exactly the name our own storage gives (`core.paths.safe_output_path`), then
opened one folder at a time with no link followed (`storage.listing.open_file`). Participants
reach another user's file only through the showcase, and only the one shown now.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import PurePosixPath
from typing import BinaryIO, cast

from pydantic import JsonValue

from queue_manager.comfy.view import content_type
from queue_manager.core.errors import FileMissing, GalleryInvalid
from queue_manager.core.events import EventType
from queue_manager.core.gallery import (
    NOTHING_SHOWN,
    SHOWABLE,
    GalleryItem,
    GalleryOutput,
    GalleryPage,
    Showcase,
    clean_caption,
    gallery_outputs,
    summarize,
    ui_workflow,
)
from queue_manager.core.ids import JobId, UserId
from queue_manager.core.jobs import JobStatus
from queue_manager.core.paths import Kind, safe_output_path
from queue_manager.service.room_wide import RoomWideCases
from queue_manager.storage.listing import open_file
from queue_manager.store.gallery import GalleryRow
from queue_manager.store.keys import Keys


class GalleryCases(RoomWideCases):
    async def gallery(self, user: UserId | None, after: JobId | None, limit: int) -> GalleryPage:
        """Completed jobs with outputs, newest first, everyone's or one user's."""
        rows, nxt = await self._gallery.page(user, after, limit)
        return GalleryPage(items=[_item(row) for row in rows], next=nxt)

    async def gallery_output(self, job_id: JobId, index: int) -> tuple[UserId, GalleryOutput]:
        """One output of a completed job, and whose it is (JobNotFound, FileMissing)."""
        job = await self._jobs.get(job_id)
        if job.status is JobStatus.COMPLETED:
            for output in _outputs(job.outputs):
                if output.index == index:
                    return job.user, output
        raise FileMissing(f"output {index} of job {job_id}")

    async def open_output(self, job_id: JobId, index: int) -> tuple[BinaryIO, GalleryOutput]:
        """The output's file, opened for reading (FileMissing when it is gone)."""
        user, output = await self.gallery_output(job_id, index)
        return await self._open(user, output), output

    async def gallery_workflow(self, job_id: JobId) -> tuple[str, dict[str, JsonValue]]:
        """What made a job, to open in ComfyUI: the graph as the participant's page had it,
        or else the API prompt it ran; with a file name for it."""
        job = await self._jobs.get(job_id)
        graph = ui_workflow(job.extra_data)
        prompt = cast("dict[str, JsonValue]", job.prompt)
        return f"{job.user}-{job.id[:8]}.json", graph if graph is not None else prompt

    # -- show and tell --------------------------------------------------------------------

    async def show_output(
        self, job_id: JobId, index: int, *, with_author: bool, caption: str, by: UserId
    ) -> Showcase:
        """Put one output on every participant's screen (replacing the one shown now)."""
        user, output = await self.gallery_output(job_id, index)
        if output.media not in SHOWABLE:
            raise GalleryInvalid(
                f"{output.filename} is not an image, video or audio: it cannot be shown"
            )
        (await self._open(user, output)).close()  # it is there now: FileMissing otherwise
        shown = Showcase(
            id=uuid.uuid4().hex,
            job=job_id,
            user=user,
            index=index,
            filename=output.filename,
            subfolder=output.subfolder,
            type=output.type,
            media=output.media,
            caption=clean_caption(caption),
            with_author=with_author,
            at=self._clock(),
            by=by,
        )
        keep = (Keys.SHOWCASE, shown.model_dump_json())
        await self.announce(EventType.OUTPUT_SHOWN, shown.public(), by=by, keep=keep)
        self._did("output shown", "job=%s output=%d user=%s by=%s", job_id, index, user, by)
        return shown

    async def stop_showing(self, by: UserId) -> None:
        """Take the shown output off every screen (nothing happens if none is shown)."""
        await self.announce(EventType.OUTPUT_SHOWN, NOTHING_SHOWN, by=by, keep=(Keys.SHOWCASE, ""))

    async def showcase(self) -> Showcase | None:
        return await self._gallery.showcase()

    async def open_showcase(self, showing: str | None = None) -> tuple[BinaryIO, Showcase]:
        """The file of the output shown now (to anyone signed in); `showing`, if given, must
        be its id: a page asking for an earlier one gets FileMissing, never the new one."""
        shown = await self._gallery.showcase()
        if shown is None or (showing is not None and showing != shown.id):
            raise FileMissing("the output shown to everyone")
        output = GalleryOutput(
            index=shown.index,
            filename=shown.filename,
            subfolder=shown.subfolder,
            type=shown.type,
            media=shown.media,
            size=0,
        )
        return await self._open(shown.user, output), shown

    async def _open(self, user: UserId, output: GalleryOutput) -> BinaryIO:
        rel = _stored_path(output)
        kind: Kind = "temp" if output.type == "temp" else "outputs"
        try:
            return await asyncio.to_thread(open_file, self._files, kind, user, rel)
        except FileNotFoundError:
            raise FileMissing(output.filename) from None


def _stored_path(output: GalleryOutput) -> PurePosixPath:
    """The output's place in its user's folder, only if it is exactly what our storage makes
    of a worker's name: anything else (`..`, an absolute path, a hidden name) is refused."""
    rel = PurePosixPath(output.subfolder, output.filename)
    if not output.filename or safe_output_path(output.subfolder, output.filename) != rel:
        raise FileMissing(output.filename)
    return rel


def _outputs(recorded: list[dict[str, JsonValue]]) -> list[GalleryOutput]:
    names = {r["filename"] for r in recorded if isinstance(r.get("filename"), str)}
    return gallery_outputs(recorded, {str(n): content_type(str(n)) for n in names})


def _item(row: GalleryRow) -> GalleryItem:
    return GalleryItem(
        job=row.job,
        user=row.user,
        finished_at=row.finished_at,
        outputs=_outputs(row.outputs),
        workflow=summarize(row.prompt),
    )
