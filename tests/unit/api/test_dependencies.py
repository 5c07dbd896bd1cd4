"""Every route and every dependency it resolves is a coroutine: FastAPI runs a plain `def` in its
thread pool, a thread hop (and a wait for the GIL) on each request that resolves it."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute

from queue_manager.api.app import create_app
from queue_manager.settings import Settings


def endpoints(routes: list[Any]) -> Iterator[APIRoute | APIWebSocketRoute]:
    for route in routes:
        if isinstance(route, APIRoute | APIWebSocketRoute):
            yield route
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        if inner is not None and hasattr(inner, "routes"):
            yield from endpoints(inner.routes)


def calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from calls(sub)


def test_the_app_has_routes_to_check(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    found = list(endpoints(app.routes))
    assert len(found) > 40
    # the participant's Run (a route of an included router, its path without the prefix)
    assert any(r.path == "/prompt" and "POST" in getattr(r, "methods", ()) for r in found)


def test_no_route_or_dependency_runs_in_the_thread_pool(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    blocking = sorted(
        {
            f"{call.__module__}.{call.__qualname__}"
            for route in endpoints(app.routes)
            for call in calls(route.dependant)
            if not inspect.iscoroutinefunction(call)
        }
    )
    assert blocking == []
