"""The participants' Templates browser, for the instructor (`/admin/api/templates`): what it
shows of ComfyUI's official templates (`all`, `mark`, `hide`, `off`), and which of them the
room's GPUs cannot run and why."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from queue_manager.core.templates import TemplatesMode

from ..auth import Instructor
from ..deps import Service

router = APIRouter(prefix="/api/templates", tags=["admin"])


class ModeChange(BaseModel):
    mode: TemplatesMode


@router.get("")
async def templates_overview(_: Instructor, service: Service) -> dict[str, object]:
    """The mode, the package's version, how many official templates the GPUs can run (null
    before any GPU reported), and for each one they cannot: what it lacks."""
    return (await service.templates_overview()).as_json()


@router.put("/mode")
async def set_templates_mode(
    body: ModeChange, account: Instructor, service: Service
) -> dict[str, object]:
    """`all`: every official template; `mark`: those the GPUs cannot run say why; `hide`:
    only those they can run; `off`: none (the workshop's own workflows always show)."""
    await service.set_templates_mode(body.mode, account.name)
    return {"mode": body.mode.value}
