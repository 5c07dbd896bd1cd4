"""Where backups are kept: a local folder or an S3-compatible bucket (AWS S3, Cloudflare R2,
MinIO, Backblaze B2), behind one small interface. Blocking: for operator commands.

Each backup is `<where>/<id>/<object>`. An object is written whole or not at all: a local one
under a hidden `.part` name renamed into place, an S3 one as a multipart upload completed at
the end (aborted on failure or Ctrl-C, so no half object and no parts left billed).

S3 settings come from the environment: CW_BACKUP_S3_ENDPOINT_URL (R2, MinIO, B2; empty: AWS),
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (R2: `auto`), or any other way boto3
finds credentials.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from queue_manager.core.backups import BackupError, Listed, Stored, backup_time

OnBytes = Callable[[int], None]
CHUNK = 1024 * 1024


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class Target(Protocol):
    where: str  # as the operator gave it (no credentials in it)

    def list(self) -> list[Listed]: ...
    def writer(self, backup: str, name: str) -> contextlib.AbstractContextManager[Sink]: ...
    def exists(self, backup: str, name: str) -> bool: ...
    def fetch(self, backup: str, name: str, folder: Path, on_bytes: OnBytes) -> Path: ...
    def delete(self, backup: str) -> None: ...


class Counted:
    """Passes writes on, counting bytes and hashing them (SHA-256) on the way."""

    def __init__(self, out: Sink) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self._out.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def stored(self) -> Stored:
        return Stored(self.size, self._hash.hexdigest())


def checksum(path: Path, on_bytes: OnBytes) -> Stored:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            on_bytes(len(chunk))
    return Stored(size, digest.hexdigest())


def open_target(spec: str | None, data_dir: Path) -> Target:
    """`s3://bucket/prefix`, a folder, or (none) CW_BACKUP_TO, else DATA/backups."""
    chosen = spec or os.environ.get("CW_BACKUP_TO") or str(data_dir / "backups")
    if chosen.startswith("s3://"):
        from queue_manager.storage.backup_s3 import S3Target  # boto3 only when it is used

        bucket, _, prefix = chosen.removeprefix("s3://").partition("/")
        if not bucket:
            raise BackupError(f"{chosen!r} names no bucket: give s3://BUCKET/PREFIX")
        return S3Target(chosen, bucket, prefix.strip("/"))
    if "://" in chosen:
        raise BackupError(f"{chosen!r}: give a folder or s3://BUCKET/PREFIX")
    return LocalTarget(Path(chosen))


class LocalTarget:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    def list(self) -> list[Listed]:
        if not self.folder.is_dir():
            return []
        return [
            Listed(p.name, (p / "manifest.json").is_file())
            for p in self.folder.iterdir()
            if p.is_dir() and not p.is_symlink() and backup_time(p.name) is not None
        ]

    @contextlib.contextmanager
    def writer(self, backup: str, name: str) -> Iterator[Sink]:
        folder = self.folder / backup
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot make {folder}: {exc.strerror}; choose --to DIR") from None
        part = folder / f".{name}.part"
        try:
            with part.open("wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, folder / name)
        finally:
            part.unlink(missing_ok=True)

    def exists(self, backup: str, name: str) -> bool:
        return (self.folder / backup / name).is_file()

    def fetch(self, backup: str, name: str, folder: Path, on_bytes: OnBytes) -> Path:
        return self.folder / backup / name  # read where it lies: no copy

    def delete(self, backup: str) -> None:
        shutil.rmtree(self.folder / backup, ignore_errors=True)


def no_progress(n: int) -> None:
    del n
