"""The layers hold: who may import whom, checked on the source (`ast`), and the agent imported
alone in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

PACKAGE = ROOT / "queue_manager"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        hits = sorted(
            m
            for m in imported_modules(path)
            if any(m == f or m.startswith(f + ".") for f in forbidden)
        )
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


STORE_AND_IO = ("queue_manager.store", "redis")
WEB = ("fastapi", "starlette", "uvicorn")


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("queue_manager/api", STORE_AND_IO),
        (
            "queue_manager/core",
            (
                *STORE_AND_IO,
                *WEB,
                "queue_manager.storage",
                "queue_manager.service",
                "queue_manager.api",
                "queue_manager.comfy",
                "httpx",
                "aiofiles",
            ),
        ),
        (
            "queue_manager/comfy",
            (
                *STORE_AND_IO,
                *WEB,
                "queue_manager.storage",
                "queue_manager.service",
                "queue_manager.api",
            ),
        ),
        (
            "queue_manager/contract",
            (
                *STORE_AND_IO,
                *WEB,
                "queue_manager.storage",
                "queue_manager.service",
                "queue_manager.api",
            ),
        ),
        (
            "queue_manager/store",
            (*WEB, "queue_manager.service", "queue_manager.api", "queue_manager.storage"),
        ),
        ("queue_manager/service", (*WEB, "queue_manager.api", "queue_manager.push")),
        # The push dispatcher reaches the queue through the service only, as routes do.
        ("queue_manager/push", (*STORE_AND_IO, *WEB, "queue_manager.api")),
        ("queue_manager", ("worker",)),
        ("worker", ("queue_manager.api", "queue_manager.service", "queue_manager.store", "redis")),
    ],
)
def test_a_layer_imports_only_what_is_below_it(folder: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(folder, forbidden) == {}


def test_routes_never_reach_past_the_service_into_its_stores() -> None:
    reached = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((PACKAGE / "api").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(f"service.{part}" in line for part in ("jobs", "control", "workers", "hub", "redis"))
        and not line.lstrip().startswith(("from ", "import "))
    ]
    assert reached == []


def test_the_agent_alone_loads_no_web_framework_and_no_redis() -> None:
    code = (
        "import sys, worker.main; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'starlette', 'uvicorn', 'redis'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
