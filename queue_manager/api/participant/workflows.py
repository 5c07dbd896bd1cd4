"""What the workshop extension asks about the instructor's workflows: the one to open on this
participant's first visit (once), and the published list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import Service
from .access import Owner

router = APIRouter()


@router.get("/workshop/welcome")
async def welcome(account: Owner, service: Service) -> dict[str, Any]:
    """`workflow` is the published workflow to open now (this participant's first visit), or
    null; the page says `POST /workshop/welcome` once it is open."""
    found = await service.first_visit_workflow(account.name)
    shown = None if found is None else {"name": found.name, "path": found.path.as_posix()}
    return {"workflow": shown}


@router.post("/workshop/welcome")
async def welcomed(account: Owner, service: Service) -> dict[str, bool]:
    await service.first_visit_done(account.name)
    return {"ok": True}


@router.get("/workshop/workflows")
async def published(account: Owner, service: Service) -> list[dict[str, Any]]:
    """The published workflows in the instructor's order (names and paths only)."""
    return [
        {"name": w.name, "path": w.path.as_posix(), "first": w.first}
        for w in await service.published_workflows()
    ]
