"""The compose tests' engine and images: one dockerd for the whole session, the base image from
Debian packages, a Redis image on it (support/docker.py). Skipped, with the reason, where this
machine cannot run dockerd."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.deploy.support.docker import (
    DockerUnavailable,
    Engine,
    base_image,
    redis_image,
    running_engine,
)


@dataclass(frozen=True)
class Images:
    """The tags of the images built from Debian packages, for the .env's build arguments."""

    base: str
    redis: str


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    try:
        with running_engine() as started:
            yield started
    except DockerUnavailable as exc:
        pytest.skip(f"no Docker engine here: {exc}")


@pytest.fixture(scope="session")
def images(engine: Engine) -> Images:
    base = base_image(engine)
    return Images(base=base, redis=redis_image(engine, base))
