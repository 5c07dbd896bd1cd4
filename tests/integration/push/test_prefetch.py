"""A `comfyui` endpoint with `prefetch=1` (one ComfyUI machine): the slot's next job waits in
ComfyUI's own queue while the current one runs, and is taken back from there, uncounted, when
the queue wants it elsewhere (an instructor's job, a cancel, the endpoint removed)."""

from __future__ import annotations

from queue_manager.contract.worker_api import NEXT_ON_GPU_PHASE
from queue_manager.core.ids import JobId, WorkerId
from queue_manager.core.jobs import JobStatus, Lane
from queue_manager.push.comfyui import prompt_id_of
from tests.integration.push.conftest import INSTRUCTOR, Room
from tests.support.graphs import sampler
from tests.support.jobs import user
from tests.support.simulator import RunningSimulator, serve_simulator
from tests.support.waiting import until
from worker.simulator.runtime import SimulatorConfig
from worker.simulator.state import QueueItem


def on_simulator(sim: RunningSimulator) -> tuple[list[str], list[str]]:
    """The prompt ids ComfyUI (the simulator) runs and holds waiting, in its queue's order."""
    queue = sim.sim.state.queue_json()
    return (
        [item[1] for item in queue["queue_running"]],
        [item[1] for item in queue["queue_pending"]],
    )


async def waiting_behind(room: Room, sim: RunningSimulator, first: JobId, second: JobId) -> None:
    """Until `first` runs on the simulator with `second` waiting in its queue behind it."""

    async def there() -> bool:
        return on_simulator(sim) == ([first], [second])

    await until(there, 20, "the second job waiting in ComfyUI's queue behind the first")


async def first_and_next(
    room: Room, sim: RunningSimulator, first_steps: int = 40
) -> tuple[JobId, JobId]:
    """A prefetching endpoint on `sim`: user001's job running there, user002's waiting behind."""
    await room.add_registered("box", sim.url, prefetch=1)
    first = await room.service.submit(user(1), Lane.NORMAL, sampler(steps=first_steps))
    second = await room.service.submit(user(2), Lane.NORMAL, sampler(steps=4))
    await waiting_behind(room, sim, first.id, second.id)
    return first.id, second.id


async def test_the_next_job_waits_in_comfyuis_queue_and_runs_next(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        first, second = await first_and_next(room, sim)

        async def next_on_gpu() -> bool:  # said just after it is posted
            return (await room.job(second)).phase == NEXT_ON_GPU_PHASE

        await until(next_on_gpu, 10, "the waiting job's phase")
        waiting = await room.job(second)
        assert (waiting.status, waiting.worker, waiting.started_at) == (
            JobStatus.RUNNING, "box.1", None,
        )  # fmt: skip

        done = [await room.finished(first), await room.finished(second)]
        assert [j.status for j in done] == [JobStatus.COMPLETED] * 2, [j.error for j in done]
        assert [j.attempts for j in done] == [1, 1]
        assert done[0].started_at is not None and done[1].started_at is not None
        assert done[0].started_at < done[1].started_at
        for n in (1, 2):
            assert list((room.data / f"outputs/user00{n}").rglob("*.png"))


async def test_an_instructors_job_takes_the_waiting_jobs_place_uncounted(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        first, second = await first_and_next(room, sim)

        demo = await room.service.submit(INSTRUCTOR, Lane.INSTRUCTOR, sampler(steps=4))
        await waiting_behind(room, sim, first, demo.id)

        done = {j: await room.finished(j) for j in (first, demo.id, second)}
        assert all(j.status is JobStatus.COMPLETED for j in done.values())
        started = sorted(done.values(), key=lambda j: j.started_at or 0)
        assert [j.id for j in started] == [first, demo.id, second]
        assert done[second].attempts == 1  # the hand-over that never ran is not counted
        assert any("before it started" in t.reason for t in done[second].timeline)


async def test_a_cancelled_waiting_job_leaves_comfyuis_queue_and_never_runs(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        first, second = await first_and_next(room, sim)

        await room.service.cancel(second, INSTRUCTOR)

        async def out_of_the_queue() -> bool:
            return on_simulator(sim) == ([first], [])

        await until(out_of_the_queue, 10, "the cancelled job deleted from ComfyUI's queue")
        assert (await room.finished(first)).status is JobStatus.COMPLETED
        assert (await room.job(second)).status is JobStatus.CANCELLED
        assert second not in sim.sim.state.history_json(None, None)
        assert not list((room.data / "outputs/user002").rglob("*.png"))


async def test_a_removed_endpoint_gives_its_waiting_job_back_uncounted(room: Room) -> None:
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        first, second = await first_and_next(room, sim, first_steps=300)

        await room.service.remove_endpoint("box", INSTRUCTOR)

        async def both_back() -> bool:
            jobs = [await room.job(first), await room.job(second)]
            return all(j.status is JobStatus.QUEUED for j in jobs)

        await until(both_back, 10, "both jobs back in the queue")
        assert (await room.job(second)).attempts == 0
        await until(lambda: on_simulator(sim) == ([], []), 10, "nothing left on ComfyUI")


async def test_a_slot_removed_by_hand_runs_each_job_once_more_and_the_waiting_one_once(
    room: Room,
) -> None:
    """Removed on the dashboard with a job running and the next waiting: both go back (the
    waiting one uncounted); the slot joins again only once both are off ComfyUI, so the
    waiting job is never on ComfyUI twice."""
    async with serve_simulator(room.tmp / "sim", SimulatorConfig(step_delay=0.05)) as sim:
        taken: list[str] = []
        take = sim.sim.state.take

        def recorded() -> QueueItem | None:
            item = take()
            if item is not None:
                taken.append(item.prompt_id)
            return item

        sim.sim.state.take = recorded  # type: ignore[method-assign]
        first, second = await first_and_next(room, sim)
        await room.service.remove_worker(WorkerId("box.1"), INSTRUCTOR)
        done = [await room.finished(first), await room.finished(second)]
        assert [j.status for j in done] == [JobStatus.COMPLETED] * 2, [j.error for j in done]
        assert [j.attempts for j in done] == [2, 1]
        # ComfyUI ran the first job's first attempt (interrupted), the waiting job once (its
        # user's turn as before the hand-over: never served, so first), then the first job's
        # second attempt, under a prompt id of its own.
        assert taken == [first, second, prompt_id_of(first, 2)]
