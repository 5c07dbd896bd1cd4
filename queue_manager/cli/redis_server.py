"""A private `redis-server` for local workshops and tests: free port, own folder, AOF on, one
server per folder (a lock file), and never outliving the process that started it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from queue_manager.cli.children import die_with_parent

LOCK_FILE = "redis.lock"
CONF_FILE = "redis.conf"


class RedisServerError(RuntimeError):
    pass


class RedisFolderBusy(RedisServerError):
    """Another Redis still serves the folder: a second one would write the same AOF."""

    def __init__(self, directory: Path, pid: str, holder: str) -> None:
        super().__init__(
            f"{directory} is in use by {holder or 'another process'}; two Redis servers on one "
            f"folder would corrupt its AOF. Stop that one first (Ctrl-C in its terminal, or "
            f"kill {pid or 'it'}), or use another data folder (--data)."
        )
        self.directory = directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server process we started and only we stop. Never touches another server."""

    directory: Path
    port: int = 0
    appendonly: bool = True
    owner: str = "a process"  # who holds the folder, as a second starter is told
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _lock: int | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def exit_code(self) -> int | None:
        """None while it runs (or before its first start); reaps it once it has ended."""
        return self.process.poll() if self.process else None

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._hold_folder()
        if not self.port:
            self.port = free_port()
        conf = self.directory / CONF_FILE
        conf.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"dir {self.directory.resolve()}",
                    f"appendonly {'yes' if self.appendonly else 'no'}",
                    "appendfsync everysec",
                    'save ""',
                    "daemonize no",
                    "protected-mode yes",
                    f"logfile {(self.directory / 'redis.log').resolve()}",
                    "",
                ]
            )
        )
        assert self._lock is not None
        # Own session: a Ctrl-C in the terminal reaches us, and we stop Redis last, cleanly.
        # SIGTERM if we die: Redis then flushes its AOF (see children.py). The lock's file
        # description is shared with Redis: the folder stays held while either of us lives.
        self.process = subprocess.Popen(
            [binary, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(self._lock,),
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        self._describe_holder()
        self._wait_ready(timeout)

    def _hold_folder(self) -> None:
        """Lock DIR/redis.lock for as long as we (or our Redis) live, or say who holds it."""
        if self._lock is not None:
            return  # a restart after a crash: still ours
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, _, holder = os.pread(fd, 4096, 0).decode(errors="replace").partition("\n")
            os.close(fd)
            raise RedisFolderBusy(self.directory, pid.strip(), holder.strip()) from None
        self._lock = fd
        self._describe_holder()

    def _describe_holder(self) -> None:
        assert self._lock is not None
        server = f", its redis-server: pid {self.pid}" if self.process else ""
        text = f"{os.getpid()}\n{self.owner} (pid {os.getpid()}{server})\n".encode()
        os.ftruncate(self._lock, 0)
        os.pwrite(self._lock, text, 0)

    def _release_folder(self) -> None:
        # Closed, never LOCK_UN: unlocking would also free it for a Redis that still runs.
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = self.directory / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RedisServerError(f"redis-server exited at start:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            # Waiting on the process both paces the retries and notices an early exit at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.02)
        raise RedisServerError(f"redis-server did not answer on port {self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._release_folder()

    def kill(self) -> None:
        """Stop abruptly (for fault tests): no shutdown save beyond what AOF already has."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def configured_port(directory: Path) -> int | None:
    """The port the last Redis started on `directory` was told to use (its redis.conf, written
    anew at each start), or None if none was ever started there."""
    try:
        text = (directory / CONF_FILE).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "port" and value.strip().isdigit():
            return int(value)
    return None
