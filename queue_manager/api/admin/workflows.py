"""The instructor's workflows as JSON routes (`/admin/api/workflows...`): publish (the file's
JSON as the body), list with what each needs that no GPU has, rename, reorder, choose the first
one, a seed per participant, remove, and send one to every page now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from queue_manager.core.workflows import PublishedWorkflow, encoded
from queue_manager.service.workflows import WorkflowCheck

from ..auth import Instructor
from ..bodies import read_capped
from ..deps import Service

router = APIRouter(prefix="/api/workflows", tags=["admin"])


class WorkflowChange(BaseModel):
    """Only the fields given change."""

    name: str | None = Field(default=None, max_length=200, description="A new name.")
    first: bool | None = Field(default=None, description="Open it on a first visit (or not).")
    randomize_seed: bool | None = Field(default=None, description="A seed per participant.")


class Order(BaseModel):
    names: list[str] = Field(max_length=1000)


class Done(BaseModel):
    ok: bool = True


def shown(workflow: PublishedWorkflow, check: WorkflowCheck) -> dict[str, Any]:
    """A workflow as the dashboard lists it (its graph is fetched on its own)."""
    graph = workflow.graph
    nodes = len(graph.get("nodes", [])) if workflow.format.value == "ui" else len(graph)
    return {
        "name": workflow.name,
        "path": workflow.path.as_posix(),
        "format": workflow.format.value,
        "nodes": nodes,
        "position": workflow.position,
        "first": workflow.first,
        "randomize_seed": workflow.randomize_seed,
        "version": workflow.version,
        "published_at": workflow.published_at,
        "published_by": workflow.published_by,
        **check.as_json(),
    }


@router.get("")
async def list_workflows(_: Instructor, service: Service) -> list[dict[str, Any]]:
    """Every published workflow in the room's order, with the node types and models it needs
    that no connected GPU has."""
    return [shown(w, await service.check_workflow(w)) for w in await service.published_workflows()]


@router.post("")
async def publish(
    request: Request,
    account: Instructor,
    service: Service,
    name: str = Query(max_length=300, description="The name, or the file's name."),
    first: bool = False,
    randomize_seed: bool | None = None,
) -> dict[str, Any]:
    """Publish the body (a workflow file, UI or API format) as `name`; the same name publishes
    a new version (participants' own copies are never touched)."""
    raw = await read_capped(request, service.settings.max_workflow_bytes)
    workflow, check = await service.publish_workflow(
        name, raw, account.name, first=first, randomize_seed=randomize_seed
    )
    return shown(workflow, check)


@router.get("/{name}")
async def get_workflow(name: str, _: Instructor, service: Service) -> Response:
    """The published file, as the instructor gave it."""
    workflow = await service.published_workflow(name)
    return Response(encoded(workflow.graph), media_type="application/json")


@router.patch("/{name}")
async def change(
    name: str, body: WorkflowChange, account: Instructor, service: Service
) -> dict[str, Any]:
    current = name
    if body.name is not None and body.name != name:
        current = (await service.rename_workflow(name, body.name, account.name)).name
    if body.randomize_seed is not None:
        await service.set_workflow_seed(current, body.randomize_seed, account.name)
    if body.first is not None:
        found = await service.published_workflow(current)
        if body.first or found.first:
            await service.set_first_workflow(current if body.first else None, account.name)
    workflow = await service.published_workflow(current)
    return shown(workflow, await service.check_workflow(workflow))


@router.put("/order")
async def reorder(body: Order, account: Instructor, service: Service) -> list[dict[str, Any]]:
    """The named workflows first, in this order; the others keep theirs after them."""
    ordered = await service.reorder_workflows(body.names, account.name)
    return [shown(w, await service.check_workflow(w)) for w in ordered]


@router.delete("/{name}")
async def remove(name: str, account: Instructor, service: Service) -> Done:
    """Gone from every sidebar; participants' own copies stay theirs."""
    await service.remove_workflow(name, account.name)
    return Done()


@router.post("/{name}/send")
async def send(name: str, account: Instructor, service: Service) -> Done:
    """Open it now in every participant's page, as a new tab."""
    await service.send_workflow(name, account.name)
    return Done()
