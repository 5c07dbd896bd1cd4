"""The container-nginx mode from a fresh checkout: nginx in a container terminates TLS, two
queue-manager replicas behind it (published nowhere), one Redis, a simulated GPU worker.

A participant logs in over HTTPS, runs a job and gets the image, through nginx; then the replicas
are taken one by one: a socket on one and the job submitted through the other, the login made
on either valid on both, jobs spread over both each claimed and ended once."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from queue_manager.rehearsal.client import TIMEOUT, Login, log_in, session_cookie
from tests.deploy.compose.conftest import Images
from tests.deploy.compose.stacks import (
    DOMAIN,
    SECRET,
    SIMULATED_GPU,
    add_participant,
    certificates,
    compose_files,
    stack_in,
    write_env,
)
from tests.deploy.support.compose import Stack
from tests.deploy.support.docker import BASE_TAG, Engine
from tests.support.deployed_run import SAVED_IMAGE, _outputs, deployed_run
from tests.support.nginx import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@dataclass(frozen=True)
class Site:
    stack: Stack
    https: str
    http: str
    ca: str
    login: Login

    def replicas(self) -> list[str]:
        """The queue managers' own addresses on the project's network."""
        return [f"http://{self.stack.ip(c)}:8188" for c in self.stack.containers("queue-manager")]


@pytest.fixture(scope="module")
def site(
    engine: Engine, images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("container-nginx")
    with stack_in(engine, folder / "checkout") as stack:
        ca = certificates(stack.folder)
        https_port, http_port = free_port(), free_port()
        write_env(
            stack.folder,
            images,
            COMPOSE_PROFILES="container-nginx",
            COMPOSE_FILE=compose_files(SIMULATED_GPU),
            CW_SECRET_KEY=SECRET,
            CW_DOMAIN=DOMAIN,
            CW_QM_REPLICAS="2",
            CW_HTTPS_PORT=str(https_port),
            CW_HTTP_PORT=str(http_port),
        )
        stack.up()
        yield Site(
            stack,
            f"https://127.0.0.1:{https_port}",
            f"http://127.0.0.1:{http_port}",
            str(ca),
            add_participant(stack),
        )


async def test_a_participant_runs_a_job_over_https_through_the_container_nginx(site: Site) -> None:
    run = await deployed_run(site.https, site.login, verify=site.ca, timeout=120)
    assert run.image.startswith(b"\x89PNG")
    # The image is in the participant's folder of the host's data folder (CW_DATA_PATH).
    saved = list((site.stack.folder / "data").glob("**/user001/**/deploy*.png"))
    assert saved, sorted(str(p) for p in (site.stack.folder / "data").rglob("*"))[:40]


def test_only_nginx_is_published_and_only_where_the_env_says(site: Site) -> None:
    published = site.stack.published()
    assert {service for service, _, _ in published} == {"nginx"}
    assert {address for _, address, _ in published} == {"127.0.0.1"}
    assert len(site.stack.containers("queue-manager")) == 2


async def test_a_socket_on_one_replica_hears_a_job_submitted_through_the_other(
    site: Site,
) -> None:
    first, second = site.replicas()
    # The login goes through nginx (its cookie is Secure); the session is valid on each replica.
    async with httpx.AsyncClient(
        base_url=site.https, verify=ssl.create_default_context(cafile=site.ca), timeout=TIMEOUT
    ) as front:
        await log_in(front, site.login)
        cookie = {"Cookie": session_cookie(front)}
    client_id = uuid.uuid4().hex
    user = site.login.name
    async with (
        asyncio.timeout(120),
        connect(f"ws{first[4:]}/{user}/ws?clientId={client_id}", additional_headers=cookie) as ws,
        httpx.AsyncClient(base_url=second, headers=cookie, timeout=TIMEOUT) as other,
    ):
        await ws.recv()
        answer = await other.post(
            f"/{user}/api/prompt", json={"client_id": client_id, "prompt": SAVED_IMAGE}
        )
        assert answer.status_code == 200, answer.text
        files = await _outputs(ws, answer.json()["prompt_id"])
    async with httpx.AsyncClient(base_url=first, headers=cookie, timeout=TIMEOUT) as one:
        wanted = {k: str(files[0].get(k, "")) for k in ("filename", "subfolder", "type")}
        image = await one.get(f"/{user}/api/view", params=wanted)
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


async def test_jobs_submitted_through_both_replicas_each_run_once(site: Site) -> None:
    replicas = site.replicas()
    async with httpx.AsyncClient(
        base_url=site.https, verify=ssl.create_default_context(cafile=site.ca), timeout=TIMEOUT
    ) as front:
        await log_in(front, site.login)
        cookie = {"Cookie": session_cookie(front)}
    user = site.login.name
    ids = []
    for number in range(6):
        async with httpx.AsyncClient(
            base_url=replicas[number % 2], headers=cookie, timeout=TIMEOUT
        ) as client:
            answer = await client.post(f"/{user}/api/prompt", json={"prompt": SAVED_IMAGE})
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["prompt_id"])
    async with (
        asyncio.timeout(180),
        httpx.AsyncClient(base_url=replicas[0], headers=cookie, timeout=TIMEOUT) as client,
    ):
        while True:
            history = (await client.get(f"/{user}/api/history")).json()
            if all(job in history for job in ids):
                break
            await asyncio.sleep(0.5)
    for job in ids:
        status = history[job]["status"]
        assert status["status_str"] == "success", status
        started = [m for m in status["messages"] if m[0] == "execution_start"]
        assert len(started) == 1, status["messages"]  # claimed once, by one worker


def test_plain_http_redirects_to_the_published_https_port_and_serves_acme_challenges(
    site: Site,
) -> None:
    token = uuid.uuid4().hex
    volume = f"{site.stack.project}_acme-webroot"
    folder = "/w/.well-known/acme-challenge"
    site.stack.engine.docker(
        "run", "--rm", "-v", f"{volume}:/w", BASE_TAG, "sh", "-c",
        f"mkdir -p {folder} && echo {token} > {folder}/{token}",
    )  # fmt: skip
    challenge = httpx.get(f"{site.http}/.well-known/acme-challenge/{token}", timeout=10)
    assert challenge.status_code == 200 and challenge.text.strip() == token
    page = httpx.get(f"{site.http}/user001/", headers={"Host": DOMAIN}, timeout=10)
    assert page.status_code == 301
    port = site.https.rsplit(":", 1)[1]
    assert page.headers["location"] == f"https://{DOMAIN}:{port}/user001/"


def test_redis_keeps_its_append_only_file_in_the_host_data_folder(site: Site) -> None:
    redis_folder = site.stack.folder / "data" / "redis"
    assert any(redis_folder.glob("appendonly*")), sorted(p.name for p in redis_folder.iterdir())
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in (redis_folder, redis_folder.parent)}
    assert owners == {(10001, 10001)}
    assert json.loads(site.stack.engine.docker(
        "inspect", "--format", "{{json .Config.User}}",
        str(site.stack.containers("queue-manager")[0]["Id"]),
    )) in ("", "10001:10001")  # fmt: skip


def test_operator_commands_find_the_workshop_inside_the_container(site: Site) -> None:
    def inside(*command: str) -> str:
        return site.stack.compose(
            "exec", "-T", "--index=1", "queue-manager", "comfy-workshop", *command
        )

    inside("backup")
    (manifest,) = (site.stack.folder / "data" / "backups").glob("*/manifest.json")
    status = json.loads(inside("status", "--json"))
    assert status["exit_code"] == 0, status
    shown = inside("status")
    assert "AOF on" in shown and "sim-1" in shown and "Backup" in shown
    assert "never" not in shown
    assert manifest.parent.name in json.dumps(status)  # the last backup


def test_without_certificates_nginx_starts_on_a_temporary_one_and_reloads_for_the_real_one(
    site: Site, tmp_path: Path
) -> None:
    """The Let's Encrypt mode's first start: nothing in CW_CERT_PATH yet."""
    certs = tmp_path / "certs"
    certs.mkdir()
    engine = site.stack.engine
    name = f"cwtest-nginx-{uuid.uuid4().hex[:8]}"
    engine.docker(
        "run", "-d", "--name", name, "-e", f"CW_DOMAIN={DOMAIN}", "-e", "CW_CERT_CHECK_SECONDS=1",
        "-v", f"{certs}:/etc/nginx/certs", "cw-test/nginx:local",
    )  # fmt: skip
    try:
        wait_for(lambda: pid_file(engine, name))
        subject = engine.docker(
            "exec", name, "openssl", "x509", "-noout", "-subject",
            "-in", "/etc/nginx/certs/fullchain.pem",
        )  # fmt: skip
        assert DOMAIN in subject
        assert "temporary self-signed" in logs(engine, name)
        real = tmp_path / "real"
        real.mkdir()
        certificates(real)
        for pem in ("privkey.pem", "fullchain.pem"):
            (certs / pem).write_bytes((real / "certs" / pem).read_bytes())
        wait_for(lambda: "the certificate changed; reloading" in logs(engine, name))
        assert engine.docker("inspect", "--format", "{{.State.Running}}", name).strip() == "true"
    finally:
        engine.docker("rm", "-f", name, check=False)


def pid_file(engine: Engine, name: str) -> bool:
    done = subprocess.run(
        ["docker", "exec", name, "test", "-s", "/run/nginx.pid"],
        env=engine.env,
        capture_output=True,
        timeout=30,
    )
    return done.returncode == 0


def logs(engine: Engine, name: str) -> str:
    done = subprocess.run(
        ["docker", "logs", name], env=engine.env, capture_output=True, text=True, timeout=30
    )
    return done.stdout + done.stderr


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
