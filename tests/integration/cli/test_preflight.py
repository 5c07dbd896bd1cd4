"""`comfy-workshop preflight` (compose's setup service) and `comfy-workshop healthcheck` (the
containers' HEALTHCHECK), run as compose runs them: a subprocess with the .env's variables."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_manager.deploy.nginx_site import UPSTREAM_VARIABLE
from tests.support.cli import run_cli
from tests.support.nginx import free_port

SECRET = "preflight-test-secret-0123456789"


def compose_env(tmp_path: Path, **values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    return {
        **base,
        "CW_DATA_DIR": str(tmp_path / "data"),
        "CW_SECRET_KEY": SECRET,
        "CW_COMPOSE_PROFILES": "container-nginx",
        "CW_DOMAIN": "workshop.example.com",
        "CW_LOCAL_MODE": "false",
        **values,
    }


def certs(tmp_path: Path) -> Path:
    folder = tmp_path / "certs"
    folder.mkdir()
    for name in ("fullchain.pem", "privkey.pem"):
        (folder / name).write_text("-----BEGIN-----\n")
    return folder


def test_a_good_env_prepares_the_data_folder_and_renders_the_site(tmp_path: Path) -> None:
    site = tmp_path / "site" / "comfy-workshop.conf"
    env = compose_env(tmp_path, CW_QM_REPLICAS="2", CW_HTTPS_PORT="8443")
    done = run_cli(env, "preflight", "--site", str(site), "--certs", str(certs(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "ok: container nginx for workshop.example.com, 2 queue managers" in done.stdout
    assert (tmp_path / "data" / "redis").is_dir()
    text = site.read_text()
    assert "server_name workshop.example.com;" in text
    assert "resolver 127.0.0.11" in text and UPSTREAM_VARIABLE in text  # every replica, re-resolved
    assert "queue-manager:8188" in text
    assert ":8443" in text  # redirects name the port the host publishes
    assert oct(site.stat().st_mode & 0o777) == "0o644"


def test_every_problem_is_one_line_and_nothing_is_prepared(tmp_path: Path) -> None:
    env = compose_env(tmp_path, CW_SECRET_KEY="change-me", CW_DOMAIN="", CW_QM_REPLICAS="1")
    done = run_cli(env, "preflight", "--site", str(tmp_path / "site.conf"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("comfy-workshop preflight: ") for line in lines), lines
    assert any("CW_SECRET_KEY in .env is the placeholder 'change-me'" in line for line in lines)
    assert any("CW_DOMAIN is empty" in line for line in lines)
    assert lines[-1].endswith("docker compose up refused: fix .env and run it again")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "site.conf").exists()


def test_a_bad_queue_manager_setting_is_refused_here_not_in_a_restart_loop(tmp_path: Path) -> None:
    done = run_cli(compose_env(tmp_path, CW_LEASE_SECONDS="1"), "preflight")
    assert done.returncode == 1
    assert "lease_seconds" in done.stderr and "Traceback" not in done.stderr


def test_missing_certificates_say_where_and_how_to_get_them(tmp_path: Path) -> None:
    empty = tmp_path / "certs"
    empty.mkdir()
    done = run_cli(compose_env(tmp_path), "preflight", "--certs", str(empty))
    assert done.returncode == 1
    assert "no fullchain.pem or privkey.pem in CW_CERT_PATH" in done.stderr
    assert "CW_TLS=letsencrypt" in done.stderr


@pytest.fixture
def answering() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_healthcheck_passes_only_when_every_url_answers(answering: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    assert run_cli(env, "healthcheck", "--url", f"{answering}/healthz").returncode == 0
    failed = run_cli(
        env, "healthcheck", "--url", f"{answering}/healthz", "--url", f"{answering}/down"
    )
    assert failed.returncode == 1 and "answered 503" in failed.stderr
    nobody = run_cli({**env, "CW_PORT": str(free_port())}, "healthcheck")
    assert nobody.returncode == 1 and "no answer" in nobody.stderr
    assert "Traceback" not in nobody.stderr
