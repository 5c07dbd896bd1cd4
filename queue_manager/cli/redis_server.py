"""A private `redis-server` for local workshops and tests: free port, own folder, AOF on."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class RedisServerError(RuntimeError):
    pass


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
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        conf = self.directory / "redis.conf"
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
        # Own session: a Ctrl-C in the terminal reaches us, and we stop Redis last, cleanly.
        self.process = subprocess.Popen(
            [binary, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready(timeout)

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
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop abruptly (for fault tests): no shutdown save beyond what AOF already has."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
