"""Everything under `/admin`: the instructor's dashboard, its JSON API and its live socket."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..participant.access import check_origin
from . import (
    accounts,
    cards,
    defaults,
    export,
    gallery,
    pages,
    routes,
    socket,
    templates,
    workflows,
)


def router() -> APIRouter:
    root = APIRouter(dependencies=[Depends(check_origin)])
    for module in (
        routes,
        workflows,
        templates,
        defaults,
        export,
        gallery,
        cards,
        accounts,
        socket,
        pages,
    ):
        root.include_router(module.router, prefix="/admin")
    return root
