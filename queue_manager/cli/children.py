"""The processes `comfy-workshop up` starts (simulators, worker agents; Redis through
`RedisServer`), tied to its life: none outlives it, not even when `up` is SIGKILLed.

Why PR_SET_PDEATHSIG: each child runs in its own session, so that a Ctrl-C in the terminal
reaches `up` alone and `up` stops them in order (agents drain, Redis last). But then nothing
reaches them when `up` dies without running its clean-up (SIGKILL, the OOM killer, a crash):
they would keep a port, an AOF folder and a GPU slot. Linux's parent-death signal, set between
fork and exec, has the kernel signal the child the moment its parent goes, however it goes.

Hazards it names: the signal follows the *thread* that forked the child, not the process, so
children are started only by threads that outlive them (the main thread, and the supervisor's
thread, which stops its children before it ends); and a parent that dies between fork and
prctl is caught by comparing the parent pid afterwards.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: signal.Signals) -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel send `signum` to the child when we die (Linux only;
    None elsewhere, where children may outlive a killed `up`)."""
    if sys.platform != "linux":
        return None
    # Looked up here, in the parent: the child only makes the call (no imports after fork).
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # we died before the prctl took effect
            os._exit(1)

    return preexec


def describe_exit(code: int) -> str:
    """'exited with code 3' or 'was killed by SIGKILL' (Popen's negative return codes)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class Program:
    """One child program, restartable with the same arguments (same port, same folders)."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    # Agents and simulators have nothing left to drain to once `up` (the queue manager) is gone.
    death_signal: signal.Signals = signal.SIGKILL
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self.args,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(self.death_signal),
            )

    def exit_code(self) -> int | None:
        """None while it runs (or before its first start); reaps it once it has ended."""
        return self.process.poll() if self.process else None

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # agents drain: the job in hand finishes

    def kill(self) -> None:
        """Kill it if it still runs, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
