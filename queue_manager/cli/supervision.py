"""Keeps what `comfy-workshop up` started running: a child that dies (Redis, a simulator, an
agent) is started again after a back-off, with one log line for the death and one for the
restart; at the end, the children are stopped in order (agents and simulators, then Redis).

It runs in its own thread: starting Redis blocks until it answers, which must not hold up the
queue manager's event loop; and children it restarts die with the thread that forked them (see
children.py), so this thread ends only after it has stopped them all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from queue_manager.cli.children import describe_exit

log = logging.getLogger(__name__)

_TICK = 0.1  # how often exits are looked for
_DRAIN_SECONDS = 30.0  # how long an agent may take to finish the job in hand


class Child(Protocol):
    @property
    def pid(self) -> int: ...

    def start(self) -> None: ...

    def exit_code(self) -> int | None: ...


class Stoppable(Child, Protocol):
    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class Foundation(Child, Protocol):
    """What the others need, stopped last (Redis)."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Restart delays: `first`, doubling up to `cap`; back to `first` after a healthy run."""

    first: float = 0.5
    cap: float = 10.0
    healthy_after: float = 60.0

    def after(self, previous: float | None, uptime: float) -> float:
        if previous is None or uptime >= self.healthy_after:
            return self.first
        return min(previous * 2, self.cap)


@dataclass
class _Watched:
    name: str
    child: Child
    started: float
    delay: float | None = None  # the last restart delay; None until the first death
    restart_at: float | None = None  # set while it is dead


@dataclass
class Supervisor:
    foundation: tuple[str, Foundation]
    programs: list[tuple[str, Stoppable]] = field(default_factory=list)
    backoff: Backoff = field(default_factory=Backoff)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _retiring: threading.Event = field(default_factory=threading.Event, init=False)
    _retired: Callable[[], None] = field(default=lambda: None, init=False)
    _hurry: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def launch(self, name: str, program: Stoppable) -> None:
        """Start `program` (from this thread, which outlives it) and watch it from `start`."""
        program.start()
        log.info("started %s (pid %d)", name, program.pid)
        self.programs.append((name, program))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="supervisor")
        self._thread.start()

    def retire_programs(self, then: Callable[[], None]) -> None:
        """Stop the programs (agents drain while the manager still serves), keep Redis, and
        call `then` from the supervisor's thread once they are gone. Signal-handler safe."""
        self._retired = then
        self._retiring.set()

    def stop(self) -> None:
        """Stop supervising and stop every child; returns once they are all gone. Programs
        still draining when the server has already gone are killed: nobody takes their
        results any more. A Ctrl-C while waiting kills them too."""
        if self._retiring.is_set():
            self._hurry.set()
        self._stopping.set()
        if self._thread is None:  # start-up failed before supervising: stop what was started
            self._stop_programs()
            self.foundation[1].stop()
        while self._thread is not None and self._thread.is_alive():
            try:
                self._thread.join(0.2)
            except KeyboardInterrupt:
                log.info("stopping now, without waiting for jobs in hand")
                self._hurry.set()

    def _run(self) -> None:
        now = time.monotonic()
        name, redis = self.foundation
        watched = [_Watched(name, redis, now)]
        watched += [_Watched(n, p, now) for n, p in self.programs]
        retired = False
        try:
            while not self._stopping.wait(_TICK):
                if self._retiring.is_set() and not retired:
                    log.info("stopping: workers first, their jobs in hand finish (Ctrl-C: now)")
                    self._stop_programs()
                    del watched[1:]  # Redis alone is still looked after
                    retired = True
                    self._retired()
                for entry in watched:
                    self._tend(entry, time.monotonic())
        finally:
            self._stop_programs()
            self.foundation[1].stop()

    def _tend(self, entry: _Watched, now: float) -> None:
        try:
            if entry.restart_at is None:
                self._notice_exit(entry, now)
            elif now >= entry.restart_at:
                self._restart(entry, now)
        except Exception:  # one child's trouble must not end the supervision of the others
            log.exception("supervising %s failed", entry.name)

    def _notice_exit(self, entry: _Watched, now: float) -> None:
        code = entry.child.exit_code()
        if code is None:
            return
        entry.delay = self.backoff.after(entry.delay, now - entry.started)
        entry.restart_at = now + entry.delay
        log.warning(
            "%s (pid %d) %s; restarting in %.1f s",
            entry.name,
            entry.child.pid,
            describe_exit(code),
            entry.delay,
        )

    def _restart(self, entry: _Watched, now: float) -> None:
        entry.started = now
        entry.restart_at = None
        try:
            entry.child.start()
        except Exception as exc:  # e.g. Redis exits at start: counts as one more death
            entry.delay = self.backoff.after(entry.delay, 0)
            entry.restart_at = time.monotonic() + entry.delay
            log.warning(
                "%s did not start again (%s); next try in %.1f s", entry.name, exc, entry.delay
            )
            return
        log.info("restarted %s (pid %d)", entry.name, entry.child.pid)

    def _stop_programs(self) -> None:
        programs = self.programs
        for _, program in programs:
            program.terminate()
        deadline = time.monotonic() + _DRAIN_SECONDS
        for name, program in programs:
            while program.pid and program.exit_code() is None and time.monotonic() < deadline:
                if self._hurry.wait(_TICK):
                    break
            if program.pid and program.exit_code() is None and not self._hurry.is_set():
                log.warning("%s (pid %d) did not stop in time; killing it", name, program.pid)
            program.kill()
