"""`docker compose up` refuses a .env that is unsafe, with words that say what to change, and
starts nothing (the rehearsal, where nothing listens beyond 127.0.0.1: test_rehearsal.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.compose.conftest import Images
from tests.deploy.compose.stacks import stack_in, write_env
from tests.deploy.support.compose import Stack
from tests.deploy.support.docker import Engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture
def stack(engine: Engine, tmp_path: Path) -> Iterator[Stack]:
    with stack_in(engine, tmp_path / "checkout") as made:
        yield made


def test_no_secret_at_all_stops_compose_before_anything_starts(
    stack: Stack, images: Images
) -> None:
    write_env(stack.folder, images, CW_SECRET_KEY="")
    done = stack.run("config")
    assert done.returncode != 0
    assert "set CW_SECRET_KEY in .env" in done.stderr
    assert stack.containers() == []


def test_the_placeholder_secret_is_refused_with_what_to_do_and_nothing_serves(
    stack: Stack, images: Images
) -> None:
    write_env(stack.folder, images, CW_SECRET_KEY="change-me", CW_DOMAIN="workshop.test")
    stack.compose("build", timeout=900)
    done = stack.run("up", "-d", timeout=600)
    assert done.returncode != 0, done.stdout + done.stderr
    said = stack.logs("setup")
    assert "CW_SECRET_KEY in .env is the placeholder 'change-me'" in said
    assert "secrets.token_urlsafe" in said  # how to make one
    assert "Traceback" not in said
    running = [c for c in stack.containers() if c["State"]["Running"]]  # type: ignore[index]
    assert running == []
    assert stack.published() == []
