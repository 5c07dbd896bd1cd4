"""DATA/credentials.csv: the plain passwords `comfy-workshop up` made (columns user, role,
password; csv's own \\r\\n line ends; mode 0600), which login cards print. Redis keeps only
argon2 hashes, so this file is the only place a password can be read back from.

Same format as `cli/roster.py` writes. A change (a password reset for a card) rewrites the
whole file under an exclusive lock, to a temporary name renamed into place, 0600 from the
start: a reader never sees half a file, two writers (the server and the `cards` command) never
lose each other's rows, and the passwords are never readable by others, not even briefly.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

FILE_NAME = "credentials.csv"
_COLUMNS = ("user", "role", "password")

Rows = dict[str, tuple[str, str]]  # user -> (role, password)


class CredentialsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Rows:
        """user -> (role, password); empty when there is no file (a deployment without `up`)."""
        try:
            with self.path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except FileNotFoundError:
            return {}
        return {r["user"]: (r["role"], r["password"]) for r in rows if r.get("user")}

    def update(self, changes: Mapping[str, tuple[str, str]]) -> None:
        """Set these users' rows (others kept, in their order; new ones at the end)."""
        with self._locked():
            rows = self.read()
            rows.update(changes)
            self._write(rows)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, rows: Rows) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(_COLUMNS)
        for name, (role, password) in rows.items():
            writer.writerow([name, role, password])
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
