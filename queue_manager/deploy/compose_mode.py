"""Which way a docker compose deployment runs, read from its `.env`, and what is wrong with it.

Pure: `read_mode` and `problems` take the variables as a mapping (the `setup` service passes
them in its environment, docker-compose.yml) and return words for the operator; the command
that prints them and prepares the folders is `cli/preflight.py`.

The modes (README "Deploy"):

* container nginx: `COMPOSE_PROFILES=container-nginx`; nginx in a container terminates TLS for
  `CW_DOMAIN`, the queue manager is published nowhere (1 or more replicas, `CW_QM_REPLICAS`).
* host nginx: `USE_HOST_NGINX=true` and the `deploy/compose/host-nginx.yml` overlay in
  `COMPOSE_FILE`; the queue manager is published on 127.0.0.1 only, for the host's own nginx.
* rehearsal: the `deploy/compose/rehearsal.yml` overlay (it sets `CW_LOCAL_MODE=true`):
  simulated GPUs, the queue manager on 127.0.0.1 only, a placeholder secret tolerated (the
  queue manager then makes a random one and keeps it in the data folder).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from queue_manager.settings import MAKE_A_SECRET, PLACEHOLDER_SECRETS

CONTAINER_NGINX = "container-nginx"
LETSENCRYPT = "letsencrypt"
HOST_NGINX_FILE = "deploy/compose/host-nginx.yml"
REHEARSAL_FILE = "deploy/compose/rehearsal.yml"
MIN_SECRET_LENGTH = 16
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class Tls(StrEnum):
    FILES = "files"  # fullchain.pem and privkey.pem in CW_CERT_PATH, renewed by the operator
    LETSENCRYPT = "letsencrypt"  # the certbot service (profile letsencrypt) keeps them there


@dataclass(frozen=True)
class Mode:
    host_nginx: bool
    container_nginx: bool
    letsencrypt: bool
    rehearsal: bool
    replicas: int
    listen_address: str
    domain: str
    tls: Tls
    https_port: int  # where the host publishes the container nginx's 443

    @property
    def name(self) -> str:
        if self.rehearsal:
            return "rehearsal"
        return "host nginx" if self.host_nginx else "container nginx"


class BadValue(ValueError):
    """A variable that cannot be read at all; the message names it and what it should be."""


def read_mode(env: Mapping[str, str]) -> Mode:
    profiles = _items(env.get("CW_COMPOSE_PROFILES", ""), ",")
    files = _items(env.get("CW_COMPOSE_FILE", ""), ":")
    try:
        replicas = int(env.get("CW_QM_REPLICAS", "1") or "1")
    except ValueError:
        raise BadValue(
            f"CW_QM_REPLICAS={env.get('CW_QM_REPLICAS')!r} is not a number: "
            "how many queue managers to run (1, or 2+ behind the container nginx)"
        ) from None
    try:
        https_port = int(env.get("CW_HTTPS_PORT", "443") or "443")
    except ValueError:
        raise BadValue(f"CW_HTTPS_PORT={env.get('CW_HTTPS_PORT')!r} is not a port number") from None
    tls_value = (env.get("CW_TLS", "") or Tls.FILES.value).lower()
    if tls_value not in {t.value for t in Tls}:
        raise BadValue(f"CW_TLS={tls_value!r}: use 'files' or 'letsencrypt'")
    host_nginx = _flag(env, "USE_HOST_NGINX")
    if _uses(files, HOST_NGINX_FILE) and not host_nginx:
        raise BadValue(
            f"COMPOSE_FILE names {HOST_NGINX_FILE} but USE_HOST_NGINX is not true: set "
            "USE_HOST_NGINX=true in .env for the host-nginx mode, or take the file out of "
            "COMPOSE_FILE"
        )
    return Mode(
        host_nginx=host_nginx,
        container_nginx=CONTAINER_NGINX in profiles,
        letsencrypt=LETSENCRYPT in profiles,
        rehearsal=_flag(env, "CW_LOCAL_MODE"),
        replicas=replicas,
        listen_address=env.get("CW_LISTEN_ADDRESS", "") or "0.0.0.0",
        domain=(env.get("CW_DOMAIN", "") or "").strip().lower(),
        tls=Tls(tls_value),
        https_port=https_port,
    )


def problems(env: Mapping[str, str]) -> list[str]:
    """Everything that stops this `.env` from making a working, safe deployment."""
    try:
        mode = read_mode(env)
    except BadValue as exc:
        return [str(exc)]
    files = _items(env.get("CW_COMPOSE_FILE", ""), ":")
    found = _secret_problems(env.get("CW_SECRET_KEY", ""), mode)
    if mode.replicas < 1:
        found.append("CW_QM_REPLICAS must be 1 or more")
    if mode.host_nginx and mode.container_nginx:
        found.append(
            f"USE_HOST_NGINX=true and COMPOSE_PROFILES has {CONTAINER_NGINX}: choose one nginx "
            f"(take {CONTAINER_NGINX} out of COMPOSE_PROFILES when the host's nginx serves)"
        )
    if mode.host_nginx and not _uses(files, HOST_NGINX_FILE):
        found.append(
            "USE_HOST_NGINX=true but the queue manager is not published for the host's nginx: "
            f"set COMPOSE_FILE=docker-compose.yml:docker-compose.override.yml:{HOST_NGINX_FILE} "
            "in .env (see .env.example)"
        )
    if mode.host_nginx and mode.replicas > 1:
        found.append(
            "the host-nginx mode publishes one queue manager on 127.0.0.1; run CW_QM_REPLICAS=1 "
            f"there, or several behind the container nginx (COMPOSE_PROFILES={CONTAINER_NGINX})"
        )
    if not (mode.host_nginx or mode.container_nginx or mode.rehearsal):
        found.append(
            "nothing would serve the participants: set COMPOSE_PROFILES=container-nginx (nginx "
            "in a container), or USE_HOST_NGINX=true with the host-nginx COMPOSE_FILE (your "
            "host's nginx) in .env; see .env.example"
        )
    if mode.container_nginx:
        found += _container_nginx_problems(mode)
    if mode.rehearsal and mode.replicas > 1 and not mode.container_nginx:
        found.append(
            "the rehearsal publishes one queue manager on 127.0.0.1:CW_PORT: use CW_QM_REPLICAS=1"
        )
    return found


def _secret_problems(secret: str, mode: Mode) -> list[str]:
    if mode.rehearsal:
        return []  # the queue manager makes its own random one (cli/session_secret.py)
    if secret in PLACEHOLDER_SECRETS:
        shown = f"the placeholder {secret!r}" if secret else "empty"
        return [
            f"CW_SECRET_KEY in .env is {shown}: whoever knows it can sign anyone's login, the "
            f"instructor's too. Put a random one in .env (make one: {MAKE_A_SECRET}); to "
            f"rehearse on this machine only, use the rehearsal overlay ({REHEARSAL_FILE})"
        ]
    if len(secret) < MIN_SECRET_LENGTH:
        return [
            f"CW_SECRET_KEY is {len(secret)} characters: use a random one of at least "
            f"{MIN_SECRET_LENGTH} (make one: {MAKE_A_SECRET})"
        ]
    return []


def _container_nginx_problems(mode: Mode) -> list[str]:
    found = []
    if not mode.domain:
        found.append(
            "CW_DOMAIN is empty: the name participants open (e.g. workshop.example.com), for "
            "the container nginx's site and certificate"
        )
    elif not is_site_name(mode.domain):
        found.append(f"CW_DOMAIN={mode.domain!r} is not a host name or an IP address")
    if mode.tls is Tls.LETSENCRYPT and not mode.letsencrypt:
        found.append(
            "CW_TLS=letsencrypt needs the certbot service: add letsencrypt to COMPOSE_PROFILES "
            f"(COMPOSE_PROFILES={CONTAINER_NGINX},letsencrypt)"
        )
    if mode.rehearsal and not _is_loopback(mode.listen_address):
        found.append(
            f"the rehearsal overlay (local mode) with the container nginx on "
            f"{mode.listen_address}: a rehearsal listens on this machine only; set "
            "CW_LISTEN_ADDRESS=127.0.0.1, or leave the rehearsal overlay out for the day"
        )
    return found


def is_site_name(name: str) -> bool:
    if _DNS_NAME.match(name):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = (env.get(name, "") or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadValue(f"{name}={value!r}: use true or false")


def _items(value: str, separator: str) -> list[str]:
    return [item.strip() for item in value.split(separator) if item.strip()]


def _uses(files: list[str], wanted: str) -> bool:
    return any(f.replace("\\", "/").removeprefix("./").endswith(wanted) for f in files)
