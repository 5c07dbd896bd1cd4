"""Backups as pure rules (no disk, no network, no clock): names, what a backup holds, its
manifest and how it is checked, which old backups go, the snapshot file's record format.

A backup is one folder (or one S3 prefix) named by the UTC time it was started, so names sort
by age (`2026-12-07T14-30-05Z`), holding:

* `redis.snapshot`: every key under the workshop's prefix as Redis DUMP payloads with their
  absolute expiry (records below), read in one atomic script;
* `files.tar`: the participants' folders and the workshop's own files (`PARTS`, `TOP_FILES`);
* `manifest.json`, written last: a backup without one is unfinished and never restored.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

FORMAT_VERSION = 1
SNAPSHOT = "redis.snapshot"
ARCHIVE = "files.tar"
MANIFEST = "manifest.json"
OBJECTS = (SNAPSHOT, ARCHIVE)
# Folders below DATA holding a folder per user (outputs, uploads, ComfyUI user data: workflows
# and settings), and the workshop's own files: the session secret and `up`'s passwords (Redis
# holds only their hashes). Never DATA/redis, archives, backups, logs, temp (ComfyUI's scratch
# previews, cleared by ComfyUI itself at each start) or hidden `.part` files.
PARTS = ("outputs", "inputs", "userdata")
TOP_FILES = ("secret_key", "credentials.csv")
# The record of the newest backup, read by `comfy-workshop status`; not part of a snapshot.
LAST_KEY = "backup:last"
# Unfinished backups (no manifest) this old are someone's crash, not a backup being written.
LEFTOVER_AGE = timedelta(days=1)

_ID = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)(?:-(\d+))?$")
_ID_FORMAT = "%Y-%m-%dT%H-%M-%SZ"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class BackupError(Exception):
    """Said as one line with what to do next; the command exits 1."""


class BadManifest(BackupError):
    pass


# -- names and durations ----------------------------------------------------------------------


def backup_id(at: datetime, taken: Iterable[str] = ()) -> str:
    """`2026-12-07T14-30-05Z` (UTC), or `...Z-2` when that second's name is taken."""
    base = at.astimezone(UTC).strftime(_ID_FORMAT)
    used, candidate, n = set(taken), base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def backup_time(name: str) -> datetime | None:
    """When the backup `name` was started, or None if `name` is not a backup's."""
    match = _ID.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), _ID_FORMAT).replace(tzinfo=UTC)


def sort_key(name: str) -> tuple[str, int]:
    match = _ID.match(name)
    return (name, 0) if match is None else (match.group(1), int(match.group(2) or 1))


def parse_duration(text: str) -> float:
    """`30m`, `6h`, `1d`, `90s` in seconds; ValueError with the accepted forms otherwise."""
    match = _DURATION.match(text.lower())
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
    if seconds < 60:
        raise ValueError(f"{text!r} is not a period of a minute or more (e.g. 30m, 6h, 1d)")
    return seconds


# -- the manifest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """One object of a backup: its size and SHA-256 (hex)."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    id: str
    product_version: str
    created_at: datetime
    redis_version: str
    key_prefix: str
    key_count: int
    files: int
    file_bytes: int
    objects: Mapping[str, Stored]
    format: int = FORMAT_VERSION

    @property
    def stored_bytes(self) -> int:
        return sum(o.size for o in self.objects.values())

    def to_json(self) -> bytes:
        body = {
            "format": self.format,
            "id": self.id,
            "product_version": self.product_version,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "redis_version": self.redis_version,
            "key_prefix": self.key_prefix,
            "key_count": self.key_count,
            "files": self.files,
            "file_bytes": self.file_bytes,
            "objects": {n: {"size": o.size, "sha256": o.sha256} for n, o in self.objects.items()},
        }
        return (json.dumps(body, indent=2) + "\n").encode()


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest in `raw`; BadManifest saying what is wrong (or too new) otherwise."""
    try:
        body = json.loads(raw)
        fmt = int(body["format"])
        if fmt > FORMAT_VERSION:
            raise BadManifest(
                f"this backup has format {fmt}, made by comfy-workshop "
                f"{body.get('product_version', '?')}: restore it with that version or newer"
            )
        objects = {
            str(n): Stored(int(o["size"]), str(o["sha256"])) for n, o in body["objects"].items()
        }
        return Manifest(
            id=str(body["id"]),
            product_version=str(body["product_version"]),
            created_at=datetime.fromisoformat(body["created_at"]),
            redis_version=str(body["redis_version"]),
            key_prefix=str(body["key_prefix"]),
            key_count=int(body["key_count"]),
            files=int(body["files"]),
            file_bytes=int(body["file_bytes"]),
            objects=objects,
            format=fmt,
        )
    except BadManifest:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadManifest(f"the manifest is not readable ({exc!r})") from None


def mismatches(manifest: Manifest, found: Mapping[str, Stored]) -> list[str]:
    """What differs between the manifest and the objects found: one phrase per object."""
    wrong = []
    for name, want in sorted(manifest.objects.items()):
        got = found.get(name)
        if got is None:
            wrong.append(f"{name} is missing")
        elif got.size != want.size:
            wrong.append(f"{name} has {got.size} bytes, the manifest says {want.size}")
        elif got.sha256 != want.sha256:
            wrong.append(f"{name} does not match its checksum (sha256 {got.sha256[:12]}...)")
    return wrong


def last_record(manifest: Manifest, target: str, finished_at: datetime) -> str:
    """The JSON kept at `{prefix}backup:last` (read by `comfy-workshop status`)."""
    return json.dumps(
        {
            "id": manifest.id,
            "finished_at": finished_at.astimezone(UTC).isoformat(),
            "target": target,
            "bytes": manifest.stored_bytes,
            "files": manifest.files,
            "version": manifest.product_version,
        }
    )


# -- retention --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """A backup found at a target: complete when its manifest is there."""

    id: str
    complete: bool


def newest_complete(listed: Iterable[Listed]) -> str | None:
    done = sorted((b.id for b in listed if b.complete), key=sort_key)
    return done[-1] if done else None


def to_delete(listed: Sequence[Listed], keep: int, just_made: str, now: datetime) -> list[str]:
    """The complete backups beyond the newest `keep` (never `just_made`), and unfinished ones
    older than a day (younger ones may be another backup being written right now)."""
    complete = sorted((b.id for b in listed if b.complete), key=sort_key, reverse=True)
    kept = set(complete[: max(keep, 1)]) | {just_made}
    old = [b for b in complete if b not in kept]
    for b in listed:
        started = backup_time(b.id)
        if not b.complete and started is not None and now - started > LEFTOVER_AGE:
            old.append(b.id)
    return sorted(old, key=sort_key)


# -- the snapshot file --------------------------------------------------------------------------

MAGIC = b"CWSNAP1\n"
_HEAD = struct.Struct(">IqQ")  # key length, expiry (ms since the epoch; -1: none), payload length


@dataclass(frozen=True)
class Record:
    key: bytes
    expire_at_ms: int  # -1: the key never expires
    payload: bytes  # Redis DUMP format


def encode_records(records: Iterable[Record]) -> Iterator[bytes]:
    yield MAGIC
    for r in records:
        yield _HEAD.pack(len(r.key), r.expire_at_ms, len(r.payload))
        yield r.key
        yield r.payload


def decode_records(data: bytes) -> list[Record]:
    if not data.startswith(MAGIC):
        raise BackupError("the Redis snapshot is not one this program wrote")
    records, at = [], len(MAGIC)
    while at < len(data):
        if at + _HEAD.size > len(data):
            raise BackupError("the Redis snapshot ends in the middle of a key")
        key_len, expire_at, size = _HEAD.unpack_from(data, at)
        at += _HEAD.size
        end = at + key_len + size
        if end > len(data):
            raise BackupError("the Redis snapshot ends in the middle of a key")
        records.append(Record(data[at : at + key_len], expire_at, data[at + key_len : end]))
        at = end
    return records


def glob_escaped(text: str) -> str:
    """`text` as a literal in a Redis MATCH/KEYS pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
