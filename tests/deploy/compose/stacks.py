"""The compose tests' stacks: a fresh checkout with a .env for one mode, brought up, with the
accounts a test needs, and taken down with its volumes afterwards."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from queue_manager.rehearsal.client import Login
from tests.deploy.compose.conftest import Images
from tests.deploy.support.compose import Stack, env_file, fresh_checkout
from tests.deploy.support.docker import Engine
from tests.support.nginx import self_signed

SECRET = "compose-test-secret-0123456789abcdef"
DOMAIN = "workshop.test"
PASSWORD = "compose-test-password"
SIMULATED_GPU = "deploy/compose/simulated-gpu.yml"
REHEARSAL = "deploy/compose/rehearsal.yml"
HOST_NGINX = "deploy/compose/host-nginx.yml"


def compose_files(*overlays: str) -> str:
    return ":".join(("docker-compose.yml", "docker-compose.override.yml", *overlays))


def write_env(folder: Path, images: Images, **values: str) -> None:
    """The .env an operator would write, on the images built here, listening on loopback."""
    (folder / ".env").write_text(
        env_file(
            {
                "CW_BASE_IMAGE": images.base,
                "CW_NGINX_BASE_IMAGE": images.base,
                "CW_REDIS_IMAGE": images.redis,
                "CW_IMAGE": "cw-test/app:local",
                "CW_NGINX_IMAGE": "cw-test/nginx:local",
                "CW_LISTEN_ADDRESS": "127.0.0.1",
                "CW_SIM_STEP_DELAY": "0.01",
                **values,
            }
        )
    )


def certificates(folder: Path) -> Path:
    """A self-signed pair for 127.0.0.1 in folder/certs, named as certbot names them."""
    certs = folder / "certs"
    certs.mkdir()
    cert, key = self_signed(folder)
    shutil.move(cert, certs / "fullchain.pem")
    shutil.move(key, certs / "privkey.pem")
    return certs / "fullchain.pem"


@contextlib.contextmanager
def stack_in(engine: Engine, folder: Path) -> Iterator[Stack]:
    """A stack on a fresh checkout in `folder`, taken down (volumes too) at the end."""
    made = Stack(engine, fresh_checkout(folder), f"cwtest{uuid.uuid4().hex[:8]}")
    try:
        yield made
    finally:
        made.down()


def add_participant(stack: Stack, name: str = "user001") -> Login:
    stack.compose(
        "exec", "-T", "--index=1", "queue-manager",
        "comfy-workshop", "users", "add", name, "--password", PASSWORD,
    )  # fmt: skip
    return Login(name, PASSWORD)
