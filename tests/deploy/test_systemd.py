"""The systemd units of a native deployment: rendered by the real installer into a temporary
root, checked by the real `systemd-analyze verify`, and the queue manager's unit's own command
line run (as a plain process, with the unit's environment, under the kernel's W^X rule that
MemoryDenyWriteExecute= sets) until it answers /healthz. No systemd service is started."""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from queue_manager.cli.redis_server import RedisServer, free_port
from queue_manager.deploy.systemd_units import EXAMPLE, UNITS, render_unit
from tests.integration.cli.up_process import wait_until

REPO = Path(__file__).resolve().parents[2]
ENV_FILE = "/etc/comfy-workshop/comfy-workshop.env"
PR_SET_MDWE, MDWE_REFUSE_EXEC_GAIN = 65, 1

pytestmark = pytest.mark.slow


def _install(tmp_path: Path) -> tuple[Path, Path]:
    """Every unit, installed under tmp_path/root; returns (root, data folder)."""
    root, data = tmp_path / "root", tmp_path / "data"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "queue_manager",
            "systemd",
            "install",
            "--root",
            str(root),
            "--data",
            str(data),
            "--units",
            ",".join(UNITS),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "systemctl daemon-reload && systemctl enable --now" in done.stdout
    return root, data


def _unit(root: Path, unit: str) -> list[tuple[str, str]]:
    text = (root / "etc/systemd/system" / UNITS[unit]).read_text()
    pairs = (line.partition("=") for line in text.splitlines() if "=" in line)
    return [(key, value) for key, _, value in pairs if not key.startswith("#")]


def test_every_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    root, _ = _install(tmp_path)
    files = [str(root / "etc/systemd/system" / name) for name in UNITS.values()]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--generators=no", *files],
        env={**os.environ, "SYSTEMD_LOG_TARGET": "console", "SYSTEMD_LOG_LEVEL": "notice"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # It exits 0 on an unknown key: every line it says is a finding.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_a_broken_unit_is_caught_by_the_same_check(tmp_path: Path) -> None:
    """No pass by absence: the check above sees an unknown key and a missing binary."""
    broken = tmp_path / "broken.service"
    broken.write_text("[Unit]\nDescription=x\n[Service]\nRequires=y\nExecStart=/no/such\n")
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--generators=no", str(broken)],
        env={**os.environ, "SYSTEMD_LOG_TARGET": "console"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Unknown key 'Requires' in section [Service]" in done.stderr
    assert "/no/such is not executable" in done.stderr


def test_the_commands_the_units_start_exist(tmp_path: Path) -> None:
    root, data = _install(tmp_path)
    for unit in UNITS:
        command = shlex.split(dict(_unit(root, unit))["ExecStart"])
        assert Path(command[0]).is_absolute() and os.access(command[0], os.X_OK), command
    assert (root / str(data).lstrip("/") / "redis").is_dir()
    env = (root / ENV_FILE.lstrip("/")).read_text()
    assert f"CW_DATA_DIR={data}\n" in env and "CW_LOCAL_MODE=false\n" in env
    assert (
        "CW_SECRET_KEY=\n" not in env and (root / ENV_FILE.lstrip("/")).stat().st_mode & 0o77 == 0
    )


def test_the_shipped_examples_are_the_renderer_s_output() -> None:
    for unit, name in UNITS.items():
        assert (REPO / "deploy/systemd" / name).read_text() == render_unit(unit, EXAMPLE), name


def test_an_existing_env_file_is_kept_and_its_conflicts_named(tmp_path: Path) -> None:
    env_file = tmp_path / "root" / ENV_FILE.lstrip("/")
    env_file.parent.mkdir(parents=True)
    env_file.write_text("CW_DATA_DIR=data\nCW_SECRET_KEY=mine\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "queue_manager",
            "systemd",
            "install",
            "--root",
            str(tmp_path / "root"),
            "--data",
            "/srv/cw",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert env_file.read_text() == "CW_DATA_DIR=data\nCW_SECRET_KEY=mine\n"
    assert f"kept {env_file}" in done.stdout
    assert f"warning: {env_file} sets CW_DATA_DIR=data (the units expect /srv/cw)" in done.stdout


def _mdwe() -> None:
    """In the child: what MemoryDenyWriteExecute= asks (no memory both writable and
    executable), set by the kernel's prctl instead of systemd's seccomp filter."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def test_the_queue_manager_unit_s_command_and_environment_serve(
    tmp_path: Path, redis_server: RedisServer, prefix: str
) -> None:
    root, data = _install(tmp_path)
    unit = _unit(root, "queue-manager")
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    env |= dict(v.partition("=")[::2] for k, v in unit if k == "Environment")
    for k, v in unit:  # systemd reads EnvironmentFile= after Environment=: it wins
        if k == "EnvironmentFile":
            lines = (root / v.lstrip("-/")).read_text().splitlines()
            env |= dict(x.partition("=")[::2] for x in lines if "=" in x and x[0] != "#")
    port = free_port()
    # The only changes: this test's private Redis, a free port, a key prefix of its own.
    env |= {"CW_REDIS_URL": redis_server.url, "CW_PORT": str(port), "CW_KEY_PREFIX": prefix}
    assert env["CW_DATA_DIR"] == str(data) and env["CW_HOST"] == "127.0.0.1"
    command = shlex.split(dict(unit)["ExecStart"])
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        command, env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT, preexec_fn=_mdwe
    )
    try:

        def healthy() -> bool:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            except httpx.HTTPError:
                return False
            return answer.status_code == 200

        wait_until(healthy, 60, "the unit's command to answer /healthz")
        # A login hashes with argon2 (cffi): loaded and run under W^X as well.
        login = httpx.get(
            f"http://127.0.0.1:{port}/user001/", auth=("user001", "wrong"), timeout=10
        )
        assert login.status_code in (401, 303, 302), login.status_code
    finally:
        server.terminate()
        assert server.wait(30) == 0, (tmp_path / "serve.log").read_text()
        log.close()


def test_systemd_analyze_security_rates_the_queue_manager_unit(tmp_path: Path) -> None:
    """Informational: the exposure score, printed (-s shows it)."""
    root, _ = _install(tmp_path)
    done = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            "--no-pager",
            str(root / "etc/systemd/system" / UNITS["queue-manager"]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    overall = [line for line in done.stdout.splitlines() if "Overall exposure" in line]
    print(*overall, sep="\n")
    assert shutil.which("systemd-analyze")
