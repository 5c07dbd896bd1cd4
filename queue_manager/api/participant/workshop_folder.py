"""The `Workshop/` folder of a participant's workflows: the instructor's published workflows,
shown inside their user data (`workflows/Workshop/<name>.json`) but never stored there.

Reading lists and opens them like the participant's own files; a save to one keeps the
participant's own copy in their folder (`workflows/<name>.json`); renaming, moving into or
deleting from the folder is refused (the workflows are the instructor's). The user-data routes
call these few functions and nothing else of the workshop.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from queue_manager.core.errors import UserDataMissing, UserDataReadOnly
from queue_manager.core.ids import UserId
from queue_manager.core.workflows import (
    WORKSHOP_FOLDER,
    in_workshop_folder,
    own_copy_path,
    published_name,
)
from queue_manager.service.queue import QueueService
from queue_manager.storage.userdata_paths import Entry

READ_ONLY = (
    "The Workshop workflows are the instructor's: open one and save it to keep your own copy "
    "in your workflows"
)


def refuse_change(*paths: PurePosixPath) -> None:
    """A rename, move or delete that touches the Workshop folder."""
    if any(in_workshop_folder(p) for p in paths):
        raise UserDataReadOnly(READ_ONLY)


def save_target(rel: PurePosixPath) -> PurePosixPath:
    """Where a participant's save of `rel` goes: their own copy for a Workshop path."""
    if in_workshop_folder(rel):
        target = own_copy_path(rel)
        if target is None or published_name(rel) is None:
            raise UserDataReadOnly(READ_ONLY)
        return target
    return rel


async def published_entries(
    service: QueueService, user: UserId, rel: PurePosixPath, *, recurse: bool, folders: bool
) -> list[Entry]:
    """The published workflows (and, with `folders`, the folders holding them) that a listing
    of `rel` shows."""
    shown_in = {WORKSHOP_FOLDER} | ({WORKSHOP_FOLDER.parent} if recurse else set())
    if folders:  # the v2 tree lists every folder on the way too
        shown_in |= {PurePosixPath(), WORKSHOP_FOLDER.parent}
    if rel not in shown_in:
        return []
    workflows = await service.published_workflows()
    if not workflows:
        return []
    entries: list[Entry] = []
    if folders:
        stamp = int(max(w.published_at for w in workflows) * 1e9)
        for folder in (WORKSHOP_FOLDER.parent, WORKSHOP_FOLDER):
            if folder != rel and _under(folder, rel):
                entries.append(Entry(folder, True, 0, stamp, stamp))
    for workflow in workflows:
        _, content = await service.workflow_for(user, workflow.name)
        stamp = int(workflow.published_at * 1e9)
        entries.append(Entry(workflow.path, False, len(content), stamp, stamp))
    return entries


async def is_published_folder(service: QueueService, rel: PurePosixPath) -> bool:
    """Does the Workshop folder make `rel` exist for every participant (`workflows`, and
    `workflows/Workshop` itself) while something is published?"""
    folders = {PurePosixPath(), WORKSHOP_FOLDER.parent, WORKSHOP_FOLDER}
    return rel in folders and bool(await service.published_workflows())


def without_workshop(entries: list[Entry]) -> list[Entry]:
    """A participant's own entries minus anything on disk inside the Workshop folder (it can
    only be there from before the workshop published; the published ones take its place)."""
    return [e for e in entries if not in_workshop_folder(e.path)]


async def published_file(
    service: QueueService, user: UserId, rel: PurePosixPath
) -> tuple[bytes, float] | None:
    """A published workflow's content as `user` gets it, and when it was published; None when
    `rel` is not in the Workshop folder. A Workshop path naming nothing published: 404."""
    if not in_workshop_folder(rel):
        return None
    name = published_name(rel)
    found = {w.name: w for w in await service.published_workflows()}
    if name is None or name not in found:
        raise UserDataMissing("File not found")
    workflow, content = await service.workflow_for(user, name)
    return content, workflow.published_at


def _under(path: PurePosixPath, base: PurePosixPath) -> bool:
    return path.parts[: len(base.parts)] == base.parts
