"""The host-nginx mode (USE_HOST_NGINX=true): the queue manager published on 127.0.0.1 only,
the site file rendered by `comfy-workshop nginx-site` served by a real nginx on the host (our
own process, loopback ports), and a participant's run over HTTPS through it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.deploy.compose.conftest import Images
from tests.deploy.compose.stacks import (
    HOST_NGINX,
    SECRET,
    SIMULATED_GPU,
    add_participant,
    compose_files,
    stack_in,
    write_env,
)
from tests.deploy.support.docker import Engine
from tests.support.deployed_run import deployed_run
from tests.support.nginx import free_port, nginx_binary, self_signed
from tests.support.nginx_site import render, serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_the_host_nginx_serves_a_run_from_the_compose_queue_manager(
    engine: Engine, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> None:
    nginx_bin = nginx_binary()
    if nginx_bin is None:
        pytest.skip("nginx is not installed (apt-get install nginx): this test runs a real one")
    folder = tmp_path_factory.mktemp("host-nginx")
    port = free_port()
    with stack_in(engine, folder / "checkout") as stack:
        write_env(
            stack.folder,
            images,
            COMPOSE_PROFILES="",
            USE_HOST_NGINX="true",
            COMPOSE_FILE=compose_files(SIMULATED_GPU, HOST_NGINX),
            CW_SECRET_KEY=SECRET,
            CW_PORT=str(port),
        )
        stack.up()
        assert stack.published() == [("queue-manager", "127.0.0.1", str(port))]
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        login = add_participant(stack)
        cert, key = self_signed(folder)
        site, ports = render(folder, (cert, key), [f"127.0.0.1:{port}"])

        async def through_nginx() -> bytes:
            async with serving(nginx_bin, site, ports, folder / "nginx") as https:
                run = await deployed_run(https, login, verify=str(cert), timeout=120)
            return run.image

        assert asyncio.run(through_nginx()).startswith(b"\x89PNG")
