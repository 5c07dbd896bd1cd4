"""A Docker engine of the tests' own, and the images they build on it without any registry.

`Engine.start` runs `dockerd` with its own data root, exec root and socket (never the host's
engine, if there is one) and stops it afterwards. The data root is kept between runs on this
machine (a cache folder, under a lock: a second run at the same time gets a throwaway one), so
layers built once are not built again; containers and networks left by a killed run are removed
at start.

Public registries are out of reach, so `base_image` builds the base from Debian packages:
debootstrap (minbase, python3 and its venv) into a folder, the host's CA bundle and pip/apt
configuration copied in, so that downloads inside builds go through the same mirrors as the
host's, then `docker import`. The tarball is cached too (CW_TEST_CACHE, default
~/.cache/comfy-workshop-tests).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BASE_TAG = "cw-test/base:bookworm"
REDIS_TAG = "cw-test/redis:bookworm"
SUITE = "bookworm"
PACKAGES = "python3,python3-venv,ca-certificates"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
START_TIMEOUT = 60.0
BUILD_TIMEOUT = 900


class DockerUnavailable(Exception):
    """No engine can run here (the message says why): the tests that need one are skipped."""


def cache_dir() -> Path:
    root = os.environ.get("CW_TEST_CACHE") or Path.home() / ".cache" / "comfy-workshop-tests"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Engine:
    socket: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        done = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def has_image(self, tag: str) -> bool:
        return bool(self.docker("images", "-q", tag).strip())


@contextlib.contextmanager
def running_engine() -> Iterator[Engine]:
    """dockerd of our own; DockerUnavailable when this machine cannot run one."""
    for tool in ("dockerd", "docker"):
        if shutil.which(tool) is None:
            raise DockerUnavailable(f"{tool} is not installed (make install-test installs it)")
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd needs root here")
    with contextlib.ExitStack() as stack:
        data_root = _data_root(stack)
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cw-dockerd-")))
        socket = run_dir / "docker.sock"
        log = data_root.parent / "dockerd.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    "dockerd",
                    f"--data-root={data_root}",
                    f"--exec-root={run_dir / 'exec'}",
                    f"--pidfile={run_dir / 'docker.pid'}",
                    f"--host=unix://{socket}",
                    "--containerd-namespace=cw-tests",
                    "--containerd-plugins-namespace=cw-tests-plugins",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (data_root.parent / "dockerd.pid").write_text(f"{process.pid}\n")
        engine = Engine(socket, process, log)
        try:
            _wait_until_up(engine)
            _clear_leftovers(engine)
            yield engine
        finally:
            _stop(process)


def _data_root(stack: contextlib.ExitStack) -> Path:
    """The cached data root when no other run holds it, else a throwaway one."""
    cached = cache_dir() / "dockerd"
    cached.mkdir(exist_ok=True)
    lock = stack.enter_context((cached / "lock").open("w"))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cw-docker-"))) / "root"
    _stop_orphan(cached)
    return cached / "root"


def _stop_orphan(cached: Path) -> None:
    """A dockerd that an earlier run started on this data root and could not stop (the run was
    killed): two engines on one data root would corrupt it."""
    try:
        pid = int((cached / "dockerd.pid").read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if not command or Path(command[0].decode()).name != "dockerd":
        return
    if f"--data-root={cached / 'root'}".encode() not in command:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaps is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _wait_until_up(engine: Engine) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if engine.process.poll() is not None:
            raise DockerUnavailable(f"dockerd exited at start:\n{_tail(engine.log)}")
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode == 0:
            return
        time.sleep(0.3)
    raise DockerUnavailable(
        f"dockerd did not answer in {START_TIMEOUT:.0f} s:\n{_tail(engine.log)}"
    )


def _clear_leftovers(engine: Engine) -> None:
    """Containers and networks a killed earlier run left in the cached data root."""
    leftovers = engine.docker("ps", "-aq").split()
    if leftovers:
        engine.docker("rm", "-f", *leftovers, timeout=120)
    engine.docker("network", "prune", "-f")
    engine.docker("volume", "prune", "-f")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- Images ----------------------------------------------------------------------------------


def base_image(engine: Engine) -> str:
    """BASE_TAG: Debian bookworm with python3, from Debian packages (cached tarball)."""
    if engine.has_image(BASE_TAG):
        return BASE_TAG
    tarball = cache_dir() / f"debian-{SUITE}-python.tar"
    if not tarball.exists():
        _debootstrap(tarball)
    with tarball.open("rb") as stream:
        done = subprocess.run(
            ["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", BASE_TAG],
            stdin=stream,
            env=engine.env,
            capture_output=True,
            timeout=300,
        )
    if done.returncode != 0:
        raise AssertionError(f"docker import failed: {done.stderr.decode(errors='replace')}")
    return BASE_TAG


def redis_image(engine: Engine, base: str) -> str:
    """REDIS_TAG: Debian's redis-server on the base (stands in for the official redis image)."""
    if not engine.has_image(REDIS_TAG):
        with tempfile.TemporaryDirectory() as context:
            (Path(context) / "Dockerfile").write_text(
                f"FROM {base}\n"
                "RUN apt-get update && apt-get install -y --no-install-recommends redis-server"
                " && rm -rf /var/lib/apt/lists/*\n"
                'CMD ["redis-server"]\n'
            )
            engine.docker("build", "-t", REDIS_TAG, context, timeout=BUILD_TIMEOUT)
    return REDIS_TAG


def _debootstrap(tarball: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise DockerUnavailable("debootstrap is not installed (make install-test installs it)")
    with tempfile.TemporaryDirectory(prefix="cw-rootfs-") as tmp:
        root = Path(tmp) / "root"
        done = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={PACKAGES}",
                SUITE,
                str(root),
                host_mirror(),
            ],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        if done.returncode != 0:
            raise AssertionError(f"debootstrap failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        _copy_host_configuration(root)
        part = tarball.with_suffix(".part")
        subprocess.run(
            ["tar", "-C", str(root), "-cf", str(part), "."], check=True, timeout=BUILD_TIMEOUT
        )
        part.replace(tarball)


def host_mirror() -> str:
    """The Debian mirror this host's apt uses (builds go through the same one)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        with contextlib.suppress(OSError):
            text = path.read_text()
            found = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
                r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+bookworm", text, re.M
            )
            if found:
                return found.group(1)
    return DEFAULT_MIRROR


def _copy_host_configuration(root: Path) -> None:
    """The CA bundle, pip's configuration and apt's proxy settings of this host, into the
    image: package downloads inside builds then work as they do here (only in the tests)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists():
        shutil.copyfile(bundle, root / "etc/ssl/certs/ca-certificates.crt")
    if Path("/etc/pip.conf").exists():
        shutil.copyfile("/etc/pip.conf", root / "etc/pip.conf")
    for conf in Path("/etc/apt/apt.conf.d").glob("*"):
        with contextlib.suppress(OSError):
            if "proxy" in conf.read_text().lower():
                shutil.copyfile(conf, root / "etc/apt/apt.conf.d" / conf.name)
