"""The instructor's use cases: see the whole room, and steer it (pause, cancel, reorder,
limits, drain or remove a GPU, broadcast). Participants never reach these."""

from __future__ import annotations

from queue_manager.core.errors import JobNotFound
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Job, Lane
from queue_manager.core.room import RoomState, room_state
from queue_manager.core.templates import TemplatesMode
from queue_manager.core.workers import WorkerState
from queue_manager.service.estimates import EstimateCases

FAILURES_SHOWN = 20


class SteeringCases(EstimateCases):
    async def room_state(self, now: float) -> RoomState:
        """The whole room: queue by lane and user with true positions, running jobs, workers,
        per-user counts and waits, recent failures. Never prompts or workflows."""
        view = await self.room_view(now, FAILURES_SHOWN)
        return room_state(view.rows, now, view.endpoints, view.estimates)

    async def job(self, job_id: JobId) -> Job:
        """Any job, with its full timeline (every transition: time, worker, reason)."""
        return await self._jobs.get(job_id)

    async def preview(self, job_id: JobId) -> tuple[str, bytes]:
        found = await self._jobs.preview(job_id)
        if found is None:
            raise JobNotFound(job_id)
        return found

    async def pause(self, by: UserId) -> None:
        await self._control.pause()
        self._did("queue paused", "by=%s", by)

    async def resume(self, by: UserId) -> None:
        await self._control.resume()
        self._did("queue resumed", "by=%s", by)

    async def cancel(self, job_id: JobId, by: UserId) -> None:
        was = await self._jobs.cancel(job_id, f"cancelled by the instructor ({by})")
        self._did("cancelled", "job=%s was=%s by=%s", job_id, was, by)

    async def move_to_front(self, job_id: JobId, by: UserId) -> None:
        await self._jobs.move_to_front(job_id)
        self._did("moved to front", "job=%s by=%s", job_id, by)

    async def set_priority(self, job_id: JobId, lane: Lane, by: UserId) -> None:
        await self._jobs.set_lane(job_id, lane)
        self._did("priority changed", "job=%s lane=%s by=%s", job_id, lane, by)

    async def drain_worker(self, worker_id: WorkerId, by: UserId) -> None:
        """The worker finishes its job and takes no more."""
        await self._workers.set_state(worker_id, WorkerState.DRAINING.value)
        self._did("worker draining", "worker=%s by=%s", worker_id, by)
        await self.refresh_holds()

    async def resume_worker(self, worker_id: WorkerId, by: UserId) -> None:
        """A drained worker takes work again."""
        await self._workers.set_state(worker_id, WorkerState.ONLINE.value)
        self._did("worker resumed", "worker=%s by=%s", worker_id, by)
        await self.refresh_holds()

    async def remove_worker(self, worker_id: WorkerId, by: UserId) -> None:
        """Forget the worker now; its running job goes back to the queue."""
        requeued = await self._workers.set_state(worker_id, "removed")
        self._did("worker removed", "worker=%s requeued=%s by=%s", worker_id, requeued, by)
        if requeued:
            await self.delete_lost_outputs()
        await self.refresh_holds()

    async def set_user_limits(
        self, user: UserId, max_queued: int | None, max_running: int | None, by: UserId
    ) -> None:
        """Both limits in one step; None returns that limit to the room default."""
        await self._control.set_user_limits(user, max_queued, max_running)
        self._did(
            "limits set", "user=%s max_queued=%s max_running=%s by=%s", user, max_queued,
            max_running, by,
        )  # fmt: skip

    async def pause_user(self, user: UserId, paused: bool, by: UserId) -> None:
        await self._control.set_user_paused(user, paused)
        self._did("user paused" if paused else "user resumed", "user=%s by=%s", user, by)

    async def broadcast(self, message: str, by: UserId) -> None:
        """Shown in every participant's ComfyUI until replaced; an empty message clears it."""
        await self._control.set_broadcast(message.strip())
        self._did("broadcast", "chars=%d by=%s", len(message.strip()), by)

    async def set_templates_mode(self, mode: TemplatesMode, by: UserId) -> None:
        """What the participants' Templates browser shows of ComfyUI's official templates:
        all, those the room's GPUs cannot run marked or hidden, or none (the workshop's own
        workflows always show). Pages read it when the browser next loads its index."""
        await self._control.set_templates_mode(mode)
        self._did("templates mode", "mode=%s by=%s", mode.value, by)
