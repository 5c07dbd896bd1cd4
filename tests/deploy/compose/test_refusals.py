"""`docker compose up` refuses a .env that is unsafe, with words that say what to change, and
starts nothing; the rehearsal overlay listens on 127.0.0.1 only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.compose.conftest import Images
from tests.deploy.support.compose import Stack, env_file, fresh_checkout
from tests.deploy.support.docker import Engine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

SECRET = "compose-test-secret-0123456789abcdef"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return fresh_checkout(tmp_path / "checkout")


@pytest.fixture
def stack(engine: Engine, checkout: Path) -> Iterator[Stack]:
    made = Stack(engine, checkout, f"cwtest{uuid.uuid4().hex[:8]}")
    yield made
    made.down()


def write_env(checkout: Path, images: Images, **values: str) -> None:
    (checkout / ".env").write_text(
        env_file(
            {
                "CW_BASE_IMAGE": images.base,
                "CW_NGINX_BASE_IMAGE": images.base,
                "CW_REDIS_IMAGE": images.redis,
                "CW_IMAGE": f"cw-test/app:{checkout.parent.name}"[:120].lower(),
                "CW_LISTEN_ADDRESS": "127.0.0.1",
                **values,
            }
        )
    )


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
