"""What `docker compose up` refuses (deploy/compose_mode.py): every problem one sentence that
names the variable and what to set."""

from __future__ import annotations

import pytest

from queue_manager.deploy.compose_mode import (
    HOST_NGINX_FILE,
    REHEARSAL_FILE,
    BadValue,
    Tls,
    problems,
    read_mode,
)

SECRET = "a-real-random-secret-0123456789"
BASE = "docker-compose.yml:docker-compose.override.yml"
CONTAINER = {
    "CW_SECRET_KEY": SECRET,
    "CW_COMPOSE_PROFILES": "container-nginx",
    "CW_DOMAIN": "workshop.example.com",
}
HOST = {
    "CW_SECRET_KEY": SECRET,
    "USE_HOST_NGINX": "true",
    "CW_COMPOSE_FILE": f"{BASE}:{HOST_NGINX_FILE}",
}
REHEARSAL = {"CW_SECRET_KEY": "change-me", "CW_LOCAL_MODE": "true"}


@pytest.mark.parametrize(
    "env", [CONTAINER, HOST, REHEARSAL], ids=["container", "host", "rehearsal"]
)
def test_each_documented_mode_passes(env: dict[str, str]) -> None:
    assert problems(env) == []


def test_the_modes_read_as_the_env_says() -> None:
    container = read_mode({**CONTAINER, "CW_QM_REPLICAS": "3", "CW_HTTPS_PORT": "8443"})
    assert container.container_nginx and not container.host_nginx
    assert (container.replicas, container.https_port, container.tls) == (3, 8443, Tls.FILES)
    assert container.name == "container nginx"
    assert read_mode(HOST).name == "host nginx"
    assert read_mode(REHEARSAL).name == "rehearsal"


@pytest.mark.parametrize("secret", ["", "change-me", "changeme", "secret"])
def test_a_placeholder_secret_is_refused_outside_the_rehearsal(secret: str) -> None:
    (said,) = problems({**CONTAINER, "CW_SECRET_KEY": secret})
    assert "CW_SECRET_KEY" in said and "secrets.token_urlsafe" in said and REHEARSAL_FILE in said


def test_a_short_secret_is_refused() -> None:
    (said,) = problems({**CONTAINER, "CW_SECRET_KEY": "short-secret"})
    assert "at least 16" in said


def test_nothing_serving_is_refused_with_both_ways_in() -> None:
    (said,) = problems({"CW_SECRET_KEY": SECRET})
    assert "COMPOSE_PROFILES=container-nginx" in said and "USE_HOST_NGINX=true" in said


def test_two_nginx_at_once_are_refused() -> None:
    found = problems({**HOST, "CW_COMPOSE_PROFILES": "container-nginx", "CW_DOMAIN": "a.example"})
    assert any("choose one nginx" in p for p in found)


def test_host_nginx_without_its_overlay_says_which_compose_file() -> None:
    (said,) = problems({**HOST, "CW_COMPOSE_FILE": BASE})
    assert HOST_NGINX_FILE in said and "COMPOSE_FILE=" in said


def test_the_host_overlay_without_the_flag_is_refused() -> None:
    with pytest.raises(BadValue, match="USE_HOST_NGINX=true"):
        read_mode({**HOST, "USE_HOST_NGINX": "false"})


def test_the_host_mode_runs_one_replica() -> None:
    (said,) = problems({**HOST, "CW_QM_REPLICAS": "2"})
    assert "CW_QM_REPLICAS=1" in said


@pytest.mark.parametrize("domain", ["", "work shop.example", "a;b", "x" * 300, "-bad.example"])
def test_the_container_nginx_needs_a_real_domain(domain: str) -> None:
    (said,) = problems({**CONTAINER, "CW_DOMAIN": domain})
    assert "CW_DOMAIN" in said


@pytest.mark.parametrize("domain", ["workshop.example.com", "localhost", "203.0.113.7", "::1"])
def test_names_and_addresses_are_domains(domain: str) -> None:
    assert problems({**CONTAINER, "CW_DOMAIN": domain}) == []


def test_letsencrypt_needs_the_certbot_profile() -> None:
    (said,) = problems({**CONTAINER, "CW_TLS": "letsencrypt"})
    assert "letsencrypt" in said and "COMPOSE_PROFILES" in said
    both = {
        **CONTAINER,
        "CW_TLS": "letsencrypt",
        "CW_COMPOSE_PROFILES": "container-nginx,letsencrypt",
    }
    assert problems(both) == []


def test_a_rehearsal_never_puts_the_container_nginx_on_a_public_address() -> None:
    public = {**REHEARSAL, "CW_COMPOSE_PROFILES": "container-nginx", "CW_DOMAIN": "localhost"}
    (said,) = problems(public)
    assert "CW_LISTEN_ADDRESS=127.0.0.1" in said
    assert problems({**public, "CW_LISTEN_ADDRESS": "127.0.0.1"}) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("USE_HOST_NGINX", "maybe"), ("CW_QM_REPLICAS", "two"), ("CW_TLS", "acme"),
     ("CW_HTTPS_PORT", "https")],
)  # fmt: skip
def test_unreadable_values_are_named(name: str, value: str) -> None:
    (said,) = problems({**CONTAINER, name: value})
    assert said.startswith(name)
