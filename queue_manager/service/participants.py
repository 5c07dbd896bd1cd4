"""A participant's use cases: Run (ComfyUI's `POST /prompt`, decided here and only here), their
queue and history, cancelling their own jobs, and what their page shows live.

Identity and lane come from the account, never from the body: `number`, `front` and a
`client_id` of someone else cannot move a job or reach another user's page. Another user's job
is JobNotFound, exactly like a missing one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import JsonValue

from queue_manager.comfy.object_info import output_nodes
from queue_manager.comfy.validation import (
    ServerCrash,
    response_body,
    submission_error,
    validate_prompt,
)
from queue_manager.core.accounts import Account
from queue_manager.core.ahead import ahead_reason
from queue_manager.core.errors import InvalidTransition, JobNotFound, PromptInvalid, PromptRejected
from queue_manager.core.ids import JobId, UserId, is_job_id, new_job_id
from queue_manager.core.jobs import Job, JobHead, JobStatus, Lane
from queue_manager.core.phases import Standing, phase
from queue_manager.core.prompts import parse_prompt
from queue_manager.core.queueing import NewJob, Submitted
from queue_manager.core.requirements import hold_reason, requirements_of
from queue_manager.core.runtimes import shape_of
from queue_manager.core.scheduling import claim_order, positions
from queue_manager.core.workers import MAY_RUN_JOBS, WorkerInfo
from queue_manager.service.catalog import CatalogView
from queue_manager.service.estimates import EstimateCases, user_limit
from queue_manager.service.fanout import Subscription
from queue_manager.storage.listing import input_exists

# The page sends the UI workflow in extra_data too (often larger than the prompt itself): a
# Run request may be this many times the largest prompt.
_REQUEST_FACTOR = 4
# Finished jobs stay in the workshop status this long, so the page can say "Done" or
# "Cancelled by the instructor" after the fact.
RECENT_SECONDS = 30.0


class ParticipantCases(EstimateCases):
    @property
    def prompt_request_limit(self) -> int:
        """The largest Run request read at all (prompt + the workflow the page sends along)."""
        return self.settings.max_prompt_bytes * _REQUEST_FACTOR

    async def submit_prompt(self, account: Account, body: object) -> Submitted:
        """A Run click: ComfyUI's `POST /prompt` body, checked as ComfyUI checks it against the
        GPUs' merged catalogue, queued in the account's lane. Refusals: PromptRejected (ours),
        PromptInvalid (ComfyUI's own 400 body), LimitExceeded."""
        if not isinstance(body, Mapping):
            raise PromptRejected("the request body must be a JSON object")
        if (refusal := submission_error(body)) is not None:
            raise PromptInvalid(refusal)
        raw_prompt = body["prompt"]
        view = await self._catalog.current()
        node_errors: dict[str, Any] = {}
        if view.from_workers:
            try:
                result = validate_prompt(
                    raw_prompt,
                    view.object_info,
                    input_file_exists=input_exists(self._files, account.name),
                    partial_execution_targets=_listed(body.get("partial_execution_targets")),
                )
            except ServerCrash as exc:
                raise PromptRejected(f"this prompt cannot be read: {exc}") from exc
            if not result.ok:
                raise PromptInvalid(response_body(result, "", 0))
            prompt, targets, node_errors = result.prompt, tuple(result.outputs), result.node_errors
        else:
            # No GPU has ever told us its nodes: queue it (held until one joins); it is checked
            # as soon as a catalogue arrives (`DispatchCases.publish_object_info`).
            prompt, targets = raw_prompt, output_nodes(raw_prompt, view.object_info)
        extra, client_id, job_id = (body.get(k) for k in ("extra_data", "client_id", "prompt_id"))
        done = await self.submit(
            account.name,
            account.lane,
            prompt,
            client_id=client_id if isinstance(client_id, str) and client_id else None,
            extra_data=extra if isinstance(extra, dict) else {},
            job_id=JobId(job_id) if isinstance(job_id, str) and is_job_id(job_id) else None,
            targets=targets,
            validated=view.from_workers,
        )
        return dataclasses.replace(done, node_errors=node_errors)

    async def submit(
        self,
        user: UserId,
        lane: Lane,
        raw_prompt: object,
        *,
        client_id: str | None = None,
        extra_data: Mapping[str, JsonValue] | None = None,
        job_id: JobId | None = None,
        targets: tuple[str, ...] = (),
        validated: bool = True,
    ) -> Submitted:
        """Queue an API-format prompt for `user` in `lane` (the caller authenticated both)."""
        prompt = parse_prompt(raw_prompt, max_nodes=self.settings.max_prompt_nodes)
        # What is stored is the checked prompt (a node without `inputs` gets `{}`): the job is
        # read back as a `Job`, which needs them; the raw one made the user's queue unreadable.
        prompt_json = json.dumps(prompt, separators=(",", ":"))
        size = len(prompt_json.encode())
        if size > self.settings.max_prompt_bytes:
            raise PromptRejected(
                f"the prompt is {size} bytes; at most {self.settings.max_prompt_bytes} are allowed"
            )
        req = requirements_of(prompt)
        job = NewJob(
            id=job_id or new_job_id(),
            user=user,
            lane=lane,
            prompt_json=prompt_json,
            requirements=req,
            client_id=client_id,
            extra_data=extra_data or {},
            targets=targets,
            validated=validated,
            shape=shape_of(prompt).key(),
        )
        done = await self._jobs.submit(job)
        if not done.runnable and done.hold is None:
            # The rare path: say why no GPU can take it (the claim script skips it meanwhile).
            known = [w for w in await self._workers.all() if w.state in MAY_RUN_JOBS]
            reason = hold_reason(await self._workers.gaps(req, known))
            await self._jobs.set_holds({job.id: reason})
            done = Submitted(done.id, done.seq, runnable=False, hold=reason)
        self._did(
            "submitted", "job=%s user=%s lane=%s nodes=%d held=%s", job.id, user, lane,
            len(prompt), done.hold,
        )  # fmt: skip
        return done

    # -- the participant's own jobs ---------------------------------------------------------

    async def user_jobs(self, user: UserId) -> list[Job]:
        """All of a user's jobs (their queue and history), oldest first."""
        return await self._jobs.get_many(await self._jobs.user_job_ids(user))

    async def user_job_heads(self, user: UserId) -> list[JobHead]:
        """`user_jobs` without what each runs: for lists, which show no graph."""
        return await self._jobs.user_heads(user)

    async def user_job(self, user: UserId, job_id: JobId) -> Job:
        """One of the user's jobs; someone else's is JobNotFound, exactly like a missing one."""
        job = await self._jobs.get(job_id)
        if job.user != user:
            raise JobNotFound(job_id)
        return job

    async def queue_remaining(self, user: UserId) -> int:
        """ComfyUI's `queue_remaining` for this user: their queued and running jobs."""
        queued, running = await self._jobs.user_counts(user)
        return queued + running

    async def remove_queued(self, user: UserId, job_ids: list[str] | None) -> list[JobId]:
        """ComfyUI's queue delete (`job_ids`) or clear (None) on the user's waiting jobs;
        running jobs are left alone, as in ComfyUI."""
        waiting = [j.id for j in await self.user_jobs(user) if j.status is JobStatus.QUEUED]
        wanted = frozenset(job_ids or ())
        chosen = waiting if job_ids is None else [i for i in waiting if i in wanted]
        return await self._cancel_own(user, chosen, "removed from the queue by the participant")

    async def interrupt(self, user: UserId, job_id: str | None) -> list[JobId]:
        """Stop the user's running job (`job_id` given: only if that one is running)."""
        running = [
            j.id
            for j in await self.user_jobs(user)
            if j.status is JobStatus.RUNNING and (job_id is None or j.id == job_id)
        ]
        return await self._cancel_own(user, running, "interrupted by the participant")

    async def _cancel_own(self, user: UserId, job_ids: list[JobId], reason: str) -> list[JobId]:
        done = []
        for job_id in job_ids:
            with contextlib.suppress(JobNotFound, InvalidTransition):
                was = await self._jobs.cancel(job_id, reason)
                done.append(job_id)
                self._did("cancelled", "job=%s user=%s was=%s by=participant", job_id, user, was)
        return done

    async def forget_history(self, user: UserId, job_ids: list[str] | None) -> None:
        """ComfyUI's history delete (`job_ids`) or clear (None): out of the user's own list;
        the jobs stay for the instructor's records."""
        finished = [j.id for j in await self.user_jobs(user) if j.status.is_final]
        wanted = frozenset(job_ids or ())
        chosen = finished if job_ids is None else [i for i in finished if i in wanted]
        if chosen:
            await self._jobs.forget(user, chosen)
            self._did("history cleared", "user=%s jobs=%d", user, len(chosen))

    # -- what the page shows live -----------------------------------------------------------

    async def positions(self) -> dict[JobId, int]:
        """Every claimable job's true position under the policy (1 = next)."""
        return positions(await self._jobs.snapshot())

    async def workshop_status(self, user: UserId, now: float) -> dict[str, Any]:
        """The workshop extension's panel: the user's live jobs with their true positions,
        phases and estimated start and finish, why others go first, the instructor's
        broadcast, and whether the room or this user is paused."""
        jobs = [
            j
            for j in await self.user_job_heads(user)
            if not j.status.is_final or (j.finished_at or 0) > now - RECENT_SECONDS
        ]
        if not jobs:
            room = await self._control.room()
            user_paused = (await self._control.user(user)).paused
            return _status([], room.broadcast, room.paused, user_paused)
        view = await self.room_view(now)
        snap, room = view.rows.snapshot, view.rows.control
        claims = claim_order(snap)
        order = {job_id: i for i, job_id in enumerate(claims, start=1)}
        user_paused, at_limit = user_limit(view.rows, user)
        standing = Standing(room.paused, user_paused, at_limit)
        entries = [
            phase(
                j,
                order.get(j.id),
                standing,
                view.estimates.get(j.id),
                ahead_reason(snap, j.id, claims) if j.status is JobStatus.QUEUED else None,
            )
            for j in jobs
        ]
        return _status(entries, room.broadcast, room.paused, user_paused)

    async def node_catalog(self) -> CatalogView:
        """The GPUs' merged `object_info` (the bundled one until a GPU has reported)."""
        return await self._catalog.current()

    async def gpu_workers(self) -> list[WorkerInfo]:
        """The known workers, for the room's `system_stats`."""
        return await self._workers.all()

    async def job_client_id(self, job_id: JobId) -> str | None:
        """The page (socket `clientId`) that submitted the job, if any."""
        return await self._jobs.client_id(job_id)

    async def job_preview(self, job_id: JobId) -> tuple[str, bytes] | None:
        """The latest preview image of a running job: (mime, bytes)."""
        return await self._jobs.preview(job_id)

    @contextlib.contextmanager
    def subscribe(self, user: UserId | None) -> Iterator[Subscription]:
        """The event stream for one user's socket (None: every event, for the dashboard)."""
        with self._hub.subscribe(user) as sub:
            yield sub

    async def queue_moved(self) -> None:
        """Returns at the next event that may move anyone's queue position."""
        await self._hub.queue_moved().wait()


def _status(
    jobs: list[dict[str, Any]], broadcast: str, paused: bool, user_paused: bool
) -> dict[str, Any]:
    return {"jobs": jobs, "broadcast": broadcast, "paused": paused, "user_paused": user_paused}


def _listed(value: Any) -> list[Any] | None:
    return value if isinstance(value, list) else None
