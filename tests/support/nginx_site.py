"""The host-nginx deployment's site, as an operator makes it (`comfy-workshop nginx-site`, run as
a command with its real `nginx -t`) and serves it (our own nginx, loopback ports): shared by the
nginx tests and the compose tests' host-nginx mode."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.nginx import Nginx, Ports, free_port, parse

DOMAIN = "workshop.example.org"


def render_command(
    out: Path, cert: Path, key: Path, ports: Ports, acme: Path, upstreams: list[str]
) -> list[str]:
    """The command line for a site on loopback ports; browsers would still use 443."""
    flags = [f"--upstream={u}" for u in upstreams]
    return [
        "nginx-site", "--domain", DOMAIN, "--cert", str(cert), "--key", str(key), *flags,
        "--http-port", str(ports.http), "--https-port", str(ports.https), "--public-port",
        "443", "--listen-address", "127.0.0.1", "--no-ipv6", "--acme-webroot", str(acme),
        "--out", str(out),
    ]  # fmt: skip


def render(tmp: Path, tls: tuple[Path, Path], upstreams: list[str]) -> tuple[Path, Ports]:
    ports = Ports(http=free_port(), https=free_port(), upstream=0)
    out, acme = tmp / "comfy-workshop.conf", tmp / "acme"
    acme.mkdir(exist_ok=True)
    done = run_cli(dict(os.environ), *render_command(out, *tls, ports, acme, upstreams))
    assert done.returncode == 0, done.stderr
    assert "nginx -t: the site is accepted" in done.stderr
    return out, ports


@contextlib.asynccontextmanager
async def serving(nginx_bin: str, site: Path, ports: Ports, prefix: Path) -> AsyncIterator[str]:
    """The site file nginx-site wrote, served by our own nginx; its HTTPS base URL."""
    text = await asyncio.to_thread(site.read_text)
    server = Nginx(nginx_bin, prefix, parse(text), ports)
    await asyncio.to_thread(server.start)
    try:
        yield f"https://127.0.0.1:{server.ports.https}"
    finally:
        await asyncio.to_thread(server.stop)
