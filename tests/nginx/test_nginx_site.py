"""`comfy-workshop nginx-site` and the host-nginx deployment it is for.

The command is run as an operator runs it (a subprocess); its `nginx -t` is the real one. Then
the site it wrote is served by a real nginx of our own (loopback ports, `-p <tmp>`, never the
system's) in front of a real workshop (`comfy-workshop up`: Redis, the queue manager, a
simulated GPU worker), and a participant logs in over verified HTTPS, runs a job and downloads
its image (tests/support/deployed_run.py). Two queue-manager replicas on one Redis and one
data folder behind one site serve the same run, and a socket on one replica sees a job
submitted on the other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from queue_manager.cli import nginx_site as cli
from queue_manager.deploy.nginx_site import SiteOptions, render_site
from queue_manager.rehearsal.client import Login
from queue_manager.settings import Settings
from tests.support.cli import run_cli
from tests.support.deployed_run import deployed_run
from tests.support.nginx import free_port
from tests.support.nginx_site import DOMAIN, render, serving
from tests.support.workshop import Workshop, start_workshop, stop_workshop

PNG = b"\x89PNG\r\n\x1a\n"
START_TIMEOUT = 60.0


# --- The command -----------------------------------------------------------------------------


def test_the_rendered_site_passes_nginx_t_and_is_written_readable(
    nginx_bin: str, tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    out, ports = render(tmp_path, tls_files, ["127.0.0.1:8188", "127.0.0.1:8189"])
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    expected = SiteOptions(
        domains=(DOMAIN,), cert=str(tls_files[0]), key=str(tls_files[1]),
        upstreams=("127.0.0.1:8188", "127.0.0.1:8189"), http_port=ports.http,
        https_port=ports.https, public_https_port=443, listen_address="127.0.0.1", ipv6=False,
        acme_webroot=str(tmp_path / "acme"), max_upload_bytes=Settings().max_upload_bytes,
    )  # fmt: skip
    assert out.read_text() == render_site(expected)
    assert list(tmp_path.glob(".comfy-workshop.conf.*")) == []  # no temp file left behind


def test_the_next_steps_name_the_file_the_webroot_and_certbot(
    nginx_bin: str, tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "site.conf"
    cert, key = tls_files
    domains = ["--domain", DOMAIN, "--domain", f"www.{DOMAIN}"]
    done = run_cli(
        dict(os.environ), "nginx-site", *domains, "--cert", str(cert), "--key", str(key),
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert f"sudo ln -sf {out} /etc/nginx/sites-enabled/" in done.stderr
    assert "sudo nginx -t && sudo systemctl reload nginx" in done.stderr
    assert (
        f"sudo certbot certonly --webroot -w /var/www/letsencrypt -d {DOMAIN} -d www.{DOMAIN}"
        in done.stderr
    )
    assert "render it again without --cert/--key" in done.stderr


def test_a_missing_certificate_is_refused_in_one_line_saying_what_to_do(
    nginx_bin: str, tmp_path: Path
) -> None:
    out = tmp_path / "site.conf"
    done = run_cli(dict(os.environ), "nginx-site", "--domain", "nowhere.example.org",
                   "--out", str(out))  # fmt: skip
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "/etc/letsencrypt/live/nowhere.example.org/fullchain.pem" in line
    assert "certbot" in line and "--cert/--key" in line and "--no-check" in line
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_without_the_check_the_site_is_printed_even_with_no_certificate(tmp_path: Path) -> None:
    done = run_cli(dict(os.environ), "nginx-site", "--domain", DOMAIN, "--no-check")
    assert done.returncode == 0, done.stderr
    assert done.stdout == render_site(SiteOptions(domains=(DOMAIN,)))
    assert "nginx -t" not in done.stderr.splitlines()[0]


def test_a_bad_option_is_one_line_naming_it() -> None:
    done = run_cli(dict(os.environ), "nginx-site", "--domain", "a.org;evil", "--no-check")
    assert done.returncode == 2
    assert done.stderr.startswith("comfy-workshop nginx-site: domain 'a.org;evil' is not")
    assert done.stdout == ""
    done = run_cli(dict(os.environ), "nginx-site", "--domain", "a.org", "--cert", "/c.pem")
    assert done.returncode == 2 and "--cert and --key together" in done.stderr


def test_an_upstream_name_this_host_cannot_resolve_points_at_the_resolver(
    nginx_bin: str, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    args = ["nginx-site", "--domain", DOMAIN, "--cert", str(cert), "--key", str(key),
            "--upstream", "queue-manager.invalid:8188"]  # fmt: skip
    refused = run_cli(dict(os.environ), *args)
    assert refused.returncode == 1
    assert 'host not found in upstream "queue-manager.invalid:8188"' in refused.stderr
    assert "--resolver" in refused.stderr
    # With a resolver the name is looked up while nginx runs, not at start or in `nginx -t`.
    accepted = run_cli(dict(os.environ), *args, "--resolver", "127.0.0.11")
    assert accepted.returncode == 0, accepted.stderr


def test_without_nginx_the_check_is_skipped_and_said(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "find_nginx", lambda: None)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser.add_subparsers())
    args = parser.parse_args(["nginx-site", "--domain", DOMAIN])
    assert cli.run_nginx_site_command(Settings(), args) == 0
    printed = capsys.readouterr()
    assert printed.out == render_site(SiteOptions(domains=(DOMAIN,)))
    assert "nginx is not installed here, the check was skipped" in printed.err


# --- A real workshop behind the rendered site ------------------------------------------------


@contextlib.contextmanager
def workshop(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Workshop]:
    """`comfy-workshop up`: Redis, the queue manager, one simulated GPU worker, user001."""
    proc, running = start_workshop(tmp, users=1, workers=1, env=env)
    try:
        yield running
    finally:
        stop_workshop(proc)


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def second_replica(first: Workshop) -> Iterator[Replica]:
    """`comfy-workshop serve` on the first one's Redis, data folder and session secret."""
    conf = (first.data / "redis" / "redis.conf").read_text().split()
    redis_url = f"redis://127.0.0.1:{conf[conf.index('port') + 1]}/0"
    # As every replica of a deployment shares CW_SECRET_KEY: `up` keeps its own in the folder.
    secret = (first.data / "secret_key").read_text().strip()
    port = free_port()
    with (first.data / "replica-b.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "queue_manager", "serve", "--port", str(port), "--data",
             str(first.data)],
            env={**os.environ, "CW_REDIS_URL": redis_url, "CW_SECRET_KEY": secret},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    replica = Replica(f"http://127.0.0.1:{port}", process)
    try:
        _wait_ready(replica, first.data / "replica-b.log")
        yield replica
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(replica: Replica, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return
        if replica.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the second replica did not start:\n{log.read_text()}")
        time.sleep(0.05)


def host(running: Workshop) -> str:
    return running.url.removeprefix("http://")


async def test_a_participant_runs_a_job_over_https_through_the_rendered_site(
    nginx_bin: str, tls_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """Host-nginx mode as the issue asks: the queue manager on loopback with secure cookies,
    the rendered site in front, the run over HTTPS only."""
    with workshop(tmp_path / "data", {"CW_COOKIE_SECURE": "true"}) as running:
        site, ports = render(tmp_path, tls_files, [host(running)])
        login = Login("user001", running.passwords["user001"])
        async with serving(nginx_bin, site, ports, tmp_path / "nginx") as base:
            run = await deployed_run(base, login, verify=str(tls_files[0]))
    assert run.image.startswith(PNG)
    assert run.job_id


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workshop, Replica]]:
    with workshop(tmp_path_factory.mktemp("replicas")) as first, second_replica(first) as second:
        yield first, second


async def test_two_replicas_behind_the_rendered_site_serve_the_run(
    nginx_bin: str,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    replicas: tuple[Workshop, Replica],
) -> None:
    """Round robin: login, socket, submit and download land on either replica, and the
    socket's replica may not be the one that took the job."""
    first, second = replicas
    site, ports = render(tmp_path, tls_files, [host(first), second.url.removeprefix("http://")])
    login = Login("user001", first.passwords["user001"])
    async with serving(nginx_bin, site, ports, tmp_path / "nginx") as base:
        runs = [await deployed_run(base, login, verify=str(tls_files[0])) for _ in range(3)]
    assert all(run.image.startswith(PNG) for run in runs)
    assert len({run.job_id for run in runs}) == 3


@pytest.mark.parametrize("socket_on_first", [True, False])
async def test_a_socket_on_one_replica_sees_a_job_submitted_on_the_other(
    replicas: tuple[Workshop, Replica], socket_on_first: bool
) -> None:
    first, second = replicas
    socket, api = (first.url, second.url) if socket_on_first else (second.url, first.url)
    login = Login("user001", first.passwords["user001"])
    run = await deployed_run(api, login, socket=socket)
    assert run.image.startswith(PNG)
