"""The instructor's workflows: publish, rename, reorder, remove, choose the first one, send one
to every page now; and what participants see of them (read-only, with a seed of their own where
the workflow asks for it).

Every change is announced to every page (`workshop.workflows`), so sidebars and the dashboard
follow live; "send to everyone" is a `workshop.open` push the extension turns into a new tab.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from queue_manager.core.errors import WorkflowInvalid, WorkflowNotFound
from queue_manager.core.events import EventType
from queue_manager.core.ids import UserId
from queue_manager.core.workflow_needs import Needs, missing, needs_of
from queue_manager.core.workflows import (
    MAX_WORKFLOWS,
    PublishedWorkflow,
    encoded,
    for_participant,
    parse_workflow,
    workflow_name,
)
from queue_manager.service.parts import QueueParts
from queue_manager.service.room_wide import RoomWideCases


@dataclass(frozen=True)
class WorkflowCheck:
    """What a workflow needs that the room's GPUs do not have (shown before the room hits it)."""

    missing: Needs
    against_gpus: bool  # False: no GPU has reported yet, checked against ComfyUI's core nodes

    def as_json(self) -> dict[str, object]:
        return {
            "missing_nodes": sorted(self.missing.node_types),
            "missing_models": sorted(self.missing.models),
            "checked_against": "gpus" if self.against_gpus else "core nodes (no GPU reported yet)",
        }


class WorkflowCases(RoomWideCases, QueueParts):
    async def published_workflows(self) -> list[PublishedWorkflow]:
        return await self._workflows.all()

    async def published_workflow(self, name: str) -> PublishedWorkflow:
        found = await self._workflows.get(name)
        if found is None:
            raise WorkflowNotFound(name)
        return found

    async def publish_workflow(
        self,
        name: str,
        raw: bytes,
        by: UserId,
        *,
        first: bool = False,
        randomize_seed: bool | None = None,
    ) -> tuple[PublishedWorkflow, WorkflowCheck]:
        """Publish `raw` (UI or API format) as `name`; a new version of a published name keeps
        its place and options. Participants' own copies are never touched."""
        name = workflow_name(name)
        fmt, graph = parse_workflow(raw, self.settings.max_workflow_bytes)
        known = await self._workflows.all()
        old = next((w for w in known if w.name == name), None)
        if old is None and len(known) >= MAX_WORKFLOWS:
            raise WorkflowInvalid(f"at most {MAX_WORKFLOWS} workflows can be published")
        workflow = PublishedWorkflow(
            name=name,
            format=fmt,
            graph=graph,
            position=old.position if old else max((w.position for w in known), default=-1) + 1,
            randomize_seed=(old.randomize_seed if old else False)
            if randomize_seed is None
            else randomize_seed,
            version=old.version + 1 if old else 1,
            published_at=time.time(),
            published_by=by,
        )
        await self._workflows.put(workflow, first=first or (not known and old is None))
        self._did(
            "workflow published", "name=%s format=%s version=%d by=%s",
            name, fmt.value, workflow.version, by,
        )  # fmt: skip
        await self._workflows_changed(by)
        return await self.published_workflow(name), await self.check_workflow(workflow)

    async def check_workflow(self, workflow: PublishedWorkflow) -> WorkflowCheck:
        view = await self._catalog.current()
        return WorkflowCheck(missing(needs_of(workflow.graph), view.object_info), view.from_workers)

    async def remove_workflow(self, name: str, by: UserId) -> None:
        if not await self._workflows.remove(name):
            raise WorkflowNotFound(name)
        self._did("workflow removed", "name=%s by=%s", name, by)
        await self._workflows_changed(by)

    async def rename_workflow(self, name: str, new_name: str, by: UserId) -> PublishedWorkflow:
        new_name = workflow_name(new_name)
        known = await self._workflows.all()
        found = next((w for w in known if w.name == name), None)
        if found is None:
            raise WorkflowNotFound(name)
        if new_name != name and any(w.name.casefold() == new_name.casefold() for w in known):
            raise WorkflowInvalid(f"a workflow named {new_name!r} is published already")
        renamed = dataclasses.replace(found, name=new_name, version=found.version + 1)
        others = [w for w in known if w.name != name]
        first = next((w.name for w in known if w.first), None)
        await self._workflows.put_all([*others, renamed], new_name if first == name else first)
        self._did("workflow renamed", "name=%s new=%s by=%s", name, new_name, by)
        await self._workflows_changed(by)
        return renamed

    async def reorder_workflows(self, names: list[str], by: UserId) -> list[PublishedWorkflow]:
        """`names` first, in that order; any published workflow not named keeps its relative
        place after them."""
        known = await self._workflows.all()
        by_name = {w.name: w for w in known}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise WorkflowNotFound(unknown[0])
        ordered = list(dict.fromkeys(names)) + [w.name for w in known if w.name not in names]
        changed = [dataclasses.replace(by_name[n], position=i) for i, n in enumerate(ordered)]
        first = next((w.name for w in known if w.first), None)
        await self._workflows.put_all(changed, first)
        self._did("workflows reordered", "order=%s by=%s", ",".join(ordered), by)
        await self._workflows_changed(by)
        return await self._workflows.all()

    async def set_first_workflow(self, name: str | None, by: UserId) -> None:
        """The workflow a participant's first visit opens (None: the frontend's own start)."""
        if name is not None:
            await self.published_workflow(name)
        await self._workflows.set_first(name)
        self._did("first workflow chosen", "name=%s by=%s", name or "-", by)
        await self._workflows_changed(by)

    async def set_workflow_seed(self, name: str, randomize: bool, by: UserId) -> None:
        """Give every participant a seed of their own in this workflow (or the published one)."""
        found = await self.published_workflow(name)
        changed = dataclasses.replace(found, randomize_seed=randomize, version=found.version + 1)
        await self._workflows.put(changed, first=found.first)
        self._did("workflow seed", "name=%s randomize=%s by=%s", name, randomize, by)
        await self._workflows_changed(by)

    async def send_workflow(self, name: str, by: UserId) -> None:
        """Open `name` now in every participant's page, as a new tab of their ComfyUI."""
        found = await self.published_workflow(name)
        data = {"name": found.name, "path": found.path.as_posix(), "version": found.version}
        await self.announce(EventType.WORKFLOW_SENT, data, by=by)

    async def _workflows_changed(self, by: UserId) -> None:
        names = [w.name for w in await self._workflows.all()]
        await self.announce(EventType.WORKFLOWS_CHANGED, {"names": list(names)}, by=by)

    # -- what participants see -----------------------------------------------------------

    async def workflow_for(self, user: UserId, name: str) -> tuple[PublishedWorkflow, bytes]:
        """A published workflow as `user` gets it (their own seed where asked for)."""
        found = await self.published_workflow(name)
        catalogue = (await self._catalog.current()).object_info if found.randomize_seed else {}
        return found, encoded(for_participant(found, user, catalogue))

    async def first_visit_workflow(self, user: UserId) -> PublishedWorkflow | None:
        """The workflow to open on `user`'s first visit; None once it has been opened (or
        when the instructor chose none)."""
        first = next((w for w in await self._workflows.all() if w.first), None)
        if first is None or await self._workflows.welcomed(user):
            return None
        return first

    async def first_visit_done(self, user: UserId) -> None:
        await self._workflows.mark_welcomed(user)

    async def forget_first_visits(self, by: UserId) -> None:
        """Everyone's next visit opens the first workflow again (the next workshop)."""
        await self._workflows.forget_welcomes()
        self._did("first visits forgotten", "by=%s", by)
