"""The rehearsal overlay: simulated GPUs, local mode with the placeholder secret, and nothing
listening beyond 127.0.0.1 (the queue manager then signs logins with a random secret it keeps
in the data folder, never with the placeholder)."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest

from tests.deploy.compose.conftest import Images
from tests.deploy.compose.stacks import (
    REHEARSAL,
    SIMULATED_GPU,
    add_participant,
    compose_files,
    stack_in,
    write_env,
)
from tests.deploy.support.docker import Engine
from tests.support.deployed_run import deployed_run
from tests.support.nginx import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_the_rehearsal_runs_on_loopback_only_with_a_kept_random_secret(
    engine: Engine, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("rehearsal")
    port = free_port()
    with stack_in(engine, folder / "checkout") as stack:
        write_env(
            stack.folder,
            images,
            COMPOSE_PROFILES="",
            COMPOSE_FILE=compose_files(SIMULATED_GPU, REHEARSAL),
            CW_SECRET_KEY="change-me",
            CW_PORT=str(port),
        )
        stack.up()
        assert stack.published() == [("queue-manager", "127.0.0.1", str(port))]
        listening = subprocess.run(
            ["ss", "-Hltnp"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        docker_proxies = [line for line in listening.splitlines() if "docker-proxy" in line]
        assert docker_proxies and all(f"127.0.0.1:{port} " in p for p in docker_proxies), (
            docker_proxies
        )
        secret = (stack.folder / "data" / "secret_key").read_text().strip()
        assert len(secret) >= 32 and secret != "change-me"
        login = add_participant(stack)
        run = asyncio.run(deployed_run(f"http://127.0.0.1:{port}", login, timeout=120))
        assert run.image.startswith(b"\x89PNG")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
