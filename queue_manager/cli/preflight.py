"""`comfy-workshop preflight`: docker compose's `setup` service, run once before anything else.

It refuses a `.env` that would not make a working, safe deployment (deploy/compose_mode.py: a
placeholder secret outside the rehearsal, no way in for participants, two nginx at once, ...),
each problem one line with what to change; the other services wait for it to succeed
(`depends_on: condition: service_completed_successfully`), so `docker compose up` stops with
those lines instead of a queue manager restarting for ever.

Then it prepares what the long-running services need and cannot make themselves: the data
folder and its `redis/` folder owned by the image's user (uid 10001; it runs as root for
that only), and, in the container-nginx mode, nginx's site file rendered by `nginx-site` for
`CW_DOMAIN` with the queue managers as upstream."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from queue_manager.deploy.compose_mode import Mode, Tls, problems, read_mode
from queue_manager.settings import Settings

APP_UID = APP_GID = 10001  # the image's user (Dockerfile), the native install's too
QUEUE_MANAGER = "queue-manager:8188"  # the service name: Docker's DNS answers every replica
DOCKER_DNS = "127.0.0.11"
# Where the nginx container finds what the site file names (docker-compose.yml's volumes).
NGINX_CERT = "/etc/nginx/certs/fullchain.pem"
NGINX_KEY = "/etc/nginx/certs/privkey.pem"
NGINX_ACME_WEBROOT = "/var/www/acme"
CERT_FILES = ("fullchain.pem", "privkey.pem")


class PreflightError(Exception):
    """One line for the operator."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="comfy-workshop preflight",
        description="check a docker compose deployment's .env and prepare its folders "
        "(the setup service of docker-compose.yml)",
    )
    parser.add_argument("--site", type=Path, help="write the container nginx's site file here")
    parser.add_argument(
        "--certs", type=Path, help="the folder holding fullchain.pem and privkey.pem (read only)"
    )
    args = parser.parse_args(argv)
    try:
        mode, settings = check(os.environ)
        data = Path(os.environ.get("CW_DATA_DIR", "/data"))
        prepare_data(data)
        if mode.container_nginx:
            if args.certs is not None and mode.tls is Tls.FILES:
                check_certificates(args.certs)
            if args.site is not None:
                write_site(mode, settings.max_upload_bytes, args.site)
    except PreflightError as exc:
        for line in str(exc).splitlines():
            print(f"comfy-workshop preflight: {line}", file=sys.stderr)
        return 1
    replicas = f"{mode.replicas} queue manager{'s' if mode.replicas > 1 else ''}"
    where = f" for {mode.domain}" if mode.container_nginx else ""
    print(f"comfy-workshop preflight: ok: {mode.name}{where}, {replicas}, data in {data}")
    return 0


def check(env: Mapping[str, str]) -> tuple[Mode, Settings]:
    """The deployment's mode and the queue manager's settings; PreflightError listing every
    problem when there are any."""
    found = problems(env)
    if not found:
        try:
            return read_mode(env), Settings()
        except ValidationError as exc:
            found = [
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
            ]
    raise PreflightError(
        "\n".join([*found, "docker compose up refused: fix .env and run it again"])
    )


def prepare_data(data: Path) -> None:
    """The data folder and Redis's folder in it, owned by the app's user."""
    for folder in (data, data / "redis"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(folder, APP_UID, APP_GID)
        except OSError as exc:
            raise PreflightError(
                f"cannot prepare the data folder {folder}: {exc.strerror}; check CW_DATA_PATH "
                "in .env names a folder on this host that Docker may write"
            ) from None
        if os.geteuid() != 0 and not os.access(folder, os.W_OK):
            raise PreflightError(
                f"{folder} is not writable by uid {os.geteuid()}: "
                f"sudo chown -R {APP_UID}:{APP_GID} <CW_DATA_PATH>"
            )


def check_certificates(folder: Path) -> None:
    missing = [name for name in CERT_FILES if not (folder / name).is_file()]
    if missing:
        raise PreflightError(
            f"no {' or '.join(missing)} in CW_CERT_PATH (mounted at {folder}): put the "
            "certificate chain and its key there (e.g. from certbot: fullchain.pem, "
            "privkey.pem), or let the container get one: CW_TLS=letsencrypt with "
            "COMPOSE_PROFILES=container-nginx,letsencrypt"
        )


def write_site(mode: Mode, max_upload_bytes: int, path: Path) -> None:
    from queue_manager.deploy.nginx_site import SiteOptions, render_site

    text = render_site(
        SiteOptions(
            domains=(mode.domain,),
            cert=NGINX_CERT,
            key=NGINX_KEY,
            upstreams=(QUEUE_MANAGER,),
            acme_webroot=NGINX_ACME_WEBROOT,
            # Replicas that start or restart later are found again (their addresses change).
            resolver=(DOCKER_DNS,),
            # Redirects to HTTPS name the port the host publishes, not the container's 443.
            public_https_port=mode.https_port,
            max_upload_bytes=max_upload_bytes,
        )
    )
    part = path.with_name(f".{path.name}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(text)
        part.chmod(0o644)
        part.replace(path)
    except OSError as exc:
        raise PreflightError(f"cannot write nginx's site file {path}: {exc.strerror}") from None
