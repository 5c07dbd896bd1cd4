"""Session cookies cannot be forged: `up` signs them with a random secret kept in the data
folder, and nothing listens beyond loopback with a placeholder secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from queue_manager.cli.redis_server import RedisServer, free_port
from queue_manager.settings import Settings
from tests.integration.cli.up_process import start_up


def forged_cookie(secret: str, user: str) -> dict[str, str]:
    """A session cookie signed the way `queue_manager.api.auth.Sessions` signs them."""
    signer = URLSafeTimedSerializer(secret, salt="cw-session")
    return {"cw_session": signer.dumps({"u": user})}


def log_in(url: str, user: str, password: str) -> dict[str, str]:
    answer = httpx.post(f"{url}/login", data={"username": user, "password": password}, timeout=10)
    assert answer.status_code == 303, answer.text
    return {"cw_session": answer.cookies["cw_session"]}


@pytest.mark.slow
def test_a_cookie_signed_with_the_placeholder_is_refused_and_the_real_secret_survives_restarts(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    # Even an explicit placeholder (as an old .env.example had it) must not sign sessions.
    env = {"CW_SECRET_KEY": "changeme"}
    up = start_up(data, tmp_path / "up1.log", "--users", "1", "--workers", "0", env=env)
    try:
        forged = forged_cookie("changeme", "instructor")
        dashboard = httpx.get(f"{up.url}/admin/", cookies=forged, timeout=10)
        assert dashboard.status_code == 303
        assert dashboard.headers["location"].startswith("/login")
        me = httpx.get(f"{up.url}/api/me", cookies=forged_cookie("changeme", "user001"))
        assert me.status_code == 401

        secret_file = data / "secret_key"
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
        secret = secret_file.read_text()
        session = log_in(up.url, "user001", up.passwords()["user001"])
    finally:
        assert up.stop() == 0, up.output()

    up = start_up(data, tmp_path / "up2.log", "--users", "1", "--workers", "0", env=env)
    try:
        assert secret_file.read_text() == secret
        me = httpx.get(f"{up.url}/api/me", cookies=session, timeout=10)
        assert me.status_code == 200, "a login did not survive the restart"
        assert me.json()["name"] == "user001"
    finally:
        assert up.stop() == 0, up.output()


@pytest.mark.slow
def test_an_explicit_real_secret_signs_the_sessions_and_alone_forges_none(tmp_path: Path) -> None:
    real = "a-real-secret-that-is-long-enough-0123456789"
    up = start_up(
        tmp_path / "data",
        tmp_path / "up.log",
        "--users",
        "1",
        "--workers",
        "0",
        env={"CW_SECRET_KEY": real},
    )
    try:
        session = log_in(up.url, "user001", up.passwords()["user001"])
        signer = URLSafeTimedSerializer(real, salt="cw-session")
        assert signer.loads(session["cw_session"])["u"] == "user001"  # signed with it
        me = httpx.get(f"{up.url}/api/me", cookies=session, timeout=10)
        assert me.json() == {"name": "user001", "role": "participant"}
        assert not (tmp_path / "data" / "secret_key").exists()
        # Knowing the secret is not enough either: a cookie needs a live session in Redis.
        forged = httpx.get(f"{up.url}/api/me", cookies=forged_cookie(real, "user001"))
        assert forged.status_code == 401
    finally:
        assert up.stop() == 0, up.output()


@pytest.mark.parametrize(
    ("host", "secret", "refused"),
    [
        ("0.0.0.0", "changeme", True),
        ("::", "changeme", True),
        ("192.168.1.20", "", True),
        ("workshop.example", "secret", True),
        ("0.0.0.0", "a-real-secret-that-is-long-enough", False),
        ("127.0.0.1", "changeme", False),
        ("127.0.0.2", "changeme", False),
        ("localhost", "changeme", False),
        ("::1", "changeme", False),
    ],
)
def test_a_placeholder_secret_is_refused_beyond_loopback_in_every_mode(
    host: str, secret: str, refused: bool
) -> None:
    settings = Settings(host=host, secret_key=secret, local_mode=True)  # type: ignore[arg-type]
    problem = settings.listening_refusal()
    if refused:
        assert problem is not None
        assert "CW_SECRET_KEY" in problem and host in problem and "secrets.token_urlsafe" in problem
    else:
        assert problem is None


@pytest.mark.slow
def test_serve_refuses_to_listen_on_every_interface_with_a_placeholder_secret(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CW_REDIS_URL": redis_server.url,
        "CW_LOCAL_MODE": "true",
        "CW_SECRET_KEY": "changeme",
    }
    args = ["serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data", str(tmp_path)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "queue_manager", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired as exc:  # it served instead of refusing (and was killed)
        pytest.fail(f"serve started with a placeholder secret on 0.0.0.0:\n{exc.stderr!r}")
    assert done.returncode != 0
    assert "CW_SECRET_KEY is a placeholder" in done.stderr
    assert "Traceback" not in done.stderr
