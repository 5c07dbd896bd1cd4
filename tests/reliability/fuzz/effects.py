"""What a fuzzed request changed: the files under the data folder, and the users' queues.

The properties every fuzzer checks: a refused request changes nothing; an accepted one
changes files only in the caller's own folders (`DATA/<kind>/<user>/...`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import httpx

from queue_manager.core.ids import UserId
from tests.reliability.fuzz.stack import Stack

Files = dict[Path, tuple[int, int]]  # relative path -> (size, mtime_ns)


def files(stack: Stack) -> Files:
    found: Files = {}
    for folder, dirs, names in os.walk(stack.data_dir):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder, name)
            st = path.lstat()
            found[path.relative_to(stack.data_dir)] = (st.st_size, st.st_mtime_ns)
    return found


def changes(before: Files, after: Files) -> set[Path]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def outside(paths: Iterable[Path], user: str, kinds: Iterable[str]) -> set[Path]:
    """The paths that are not in one of `user`'s folders of `kinds`."""
    allowed = {(kind, user) for kind in kinds}
    return {p for p in paths if tuple(p.parts[:2]) not in allowed or len(p.parts) < 3}


def jobs(stack: Stack, user: str) -> set[str]:
    """The ids of all the user's jobs (queue and history), from the queue store."""
    return {job.id for job in stack.run(stack.app.state.service.user_jobs(UserId(user)))}


def no_server_error(r: httpx.Response, what: object) -> None:
    assert r.status_code < 500, f"{r.status_code} for {what!r}: {r.text[:500]}"
