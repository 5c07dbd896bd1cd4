"""A fresh checkout of the project with its own `.env`, brought up with docker compose on the
tests' engine (support/docker.py), the way an operator does it on a VPS.

`fresh_checkout` copies what git would check out (tracked files and new ones that are not
ignored) into a temporary folder: no `.venv`, no `data/`, no `.env`. `Stack` runs Compose v2
(`docker compose`) when the engine's client has it, else docker-compose 1.29 (Debian's), on
that folder; every call has a timeout and a failure shows the command's output and the
services' logs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.support.docker import Engine
from tests.support.paths import ROOT

UP_TIMEOUT = 600
HEALTH_TIMEOUT = 180.0


def fresh_checkout(target: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        name = raw.decode()
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the work tree but still in the index
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    return target


def env_file(values: Mapping[str, str]) -> str:
    """.env.example with `values` put in place of its own (the rest as the example has it)."""
    lines, seen = [], set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.partition("=")[0].strip()
        if not line.startswith("#") and "=" in line and name in values:
            lines.append(f"{name}={values[name]}")
            seen.add(name)
        else:
            lines.append(line)
    lines += [f"{name}={value}" for name, value in values.items() if name not in seen]
    return "\n".join(lines) + "\n"


def compose_command(engine: Engine) -> list[str]:
    done = subprocess.run(
        ["docker", "compose", "version"], env=engine.env, capture_output=True, timeout=30
    )
    if done.returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


@dataclass
class Stack:
    engine: Engine
    folder: Path
    project: str

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        done = self.run(*args, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(
                f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                f"\n--- logs ---\n{self.logs()}"
            )
        return done.stdout

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose_command(self.engine), "--project-name", self.project, *args],
            cwd=self.folder,
            env={**self.engine.env, "COMPOSE_HTTP_TIMEOUT": "300"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def logs(self, *services: str) -> str:
        done = self.run("logs", "--no-color", "--tail", "60", *services, timeout=60)
        return done.stdout + done.stderr

    def up(self) -> None:
        self.compose("build", timeout=UP_TIMEOUT)
        self.compose("up", "-d", timeout=UP_TIMEOUT)
        self.wait_healthy()

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)

    def containers(self, service: str | None = None) -> list[dict[str, object]]:
        """`docker inspect` of the project's containers (of one service)."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service is not None:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = self.engine.docker("ps", "-aq", *filters).split()
        if not ids:
            return []
        found: list[dict[str, object]] = json.loads(self.engine.docker("inspect", *ids))
        return found

    def wait_healthy(self) -> None:
        """Every long-running container healthy (one-shots exited 0)."""
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            waiting = [
                f"{_service(c)}: {_state(c)}" for c in self.containers() if _state(c) != "ready"
            ]
            if not waiting:
                return
            if any(": failed" in w for w in waiting) or time.monotonic() > deadline:
                raise AssertionError(f"not healthy: {waiting}\n--- logs ---\n{self.logs()}")
            time.sleep(1)

    def ip(self, container: Mapping[str, object]) -> str:
        networks = container["NetworkSettings"]["Networks"]  # type: ignore[index]
        for network in networks.values():
            return str(network["IPAddress"])
        raise AssertionError("container on no network")

    def published(self) -> list[tuple[str, str, str]]:
        """(service, host address, host port) of every published port."""
        found = []
        for container in self.containers():
            ports = container["NetworkSettings"]["Ports"] or {}  # type: ignore[index]
            for bindings in ports.values():
                for binding in bindings or ():
                    found.append((_service(container), binding["HostIp"], binding["HostPort"]))
        return found


def _service(container: Mapping[str, object]) -> str:
    labels = container["Config"]["Labels"]  # type: ignore[index]
    return str(labels["com.docker.compose.service"])


def _state(container: Mapping[str, object]) -> str:
    state = container["State"]
    assert isinstance(state, dict)
    if state["Status"] == "exited":
        return "ready" if state["ExitCode"] == 0 and _service(container) == "setup" else "failed"
    health = state.get("Health")
    if health is None:
        return "ready" if state["Status"] == "running" else str(state["Status"])
    return "ready" if health["Status"] == "healthy" else str(health["Status"])
