"""What `comfy-workshop status` says, as pure functions (no Redis, no disk, no clock).

The facts are read elsewhere (`service.operator_status`): the room as the dashboard sees it,
Redis's INFO, the last backup's record, the data folder's disk. Here they are judged into
findings (`attention` ones make the command exit 1, for monitoring) and shown as one screen of
text or one JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queue_manager.core.endpoints import endpoint_of
from queue_manager.core.room import EndpointShown, RoomState, WorkerShown
from queue_manager.core.sizes import human_bytes

# The data folder's disk is nearly full below either of these (outputs are images and videos).
LOW_FREE_BYTES = 5 * 10**9
LOW_FREE_SHARE = 0.10
# A backup older than this is mentioned (a note: not every workshop backs up daily).
OLD_BACKUP_SECONDS = 7 * 86400
PARTS = ("outputs", "inputs", "userdata")
OK, ATTENTION = 0, 1


@dataclass(frozen=True)
class RedisHealth:
    version: str
    used_memory: int
    aof_enabled: bool
    aof_last_write_status: str  # ok | err
    aof_rewrite_status: str  # ok | err (the last background rewrite)
    rdb_last_save: float | None  # unix time
    rdb_last_status: str  # ok | err (the last background save)
    appendfsync: str | None  # None: CONFIG GET refused (a managed Redis)

    @classmethod
    def from_info(cls, info: Mapping[str, Any], appendfsync: str | None) -> RedisHealth:
        """From redis-py's parsed INFO (server, memory and persistence sections)."""
        saved = int(info.get("rdb_last_save_time", 0) or 0)
        return cls(
            version=str(info.get("redis_version", "?")),
            used_memory=int(info.get("used_memory", 0)),
            aof_enabled=int(info.get("aof_enabled", 0)) == 1,
            aof_last_write_status=str(info.get("aof_last_write_status", "ok")),
            aof_rewrite_status=str(info.get("aof_last_bgrewrite_status", "ok")),
            rdb_last_save=float(saved) if saved else None,
            rdb_last_status=str(info.get("rdb_last_bgsave_status", "ok")),
            appendfsync=appendfsync,
        )


@dataclass(frozen=True)
class Backup:
    """The record `comfy-workshop backup` keeps of the newest backup (core.backups)."""

    id: str
    finished_at: datetime
    target: str
    bytes: int
    files: int
    version: str


def parse_backup(raw: str) -> Backup:
    """The record in `raw`; ValueError when it is not one."""
    try:
        body = json.loads(raw)
        finished = datetime.fromisoformat(str(body["finished_at"]))
        return Backup(
            id=str(body["id"]),
            finished_at=finished if finished.tzinfo else finished.replace(tzinfo=UTC),
            target=str(body.get("target", "")),
            bytes=int(body.get("bytes", 0)),
            files=int(body.get("files", 0)),
            version=str(body.get("version", "")),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a backup record ({exc})") from None


@dataclass(frozen=True)
class DiskUse:
    folder: str
    exists: bool
    parts: Mapping[str, int]  # outputs, inputs, userdata: bytes
    free: int  # for an unprivileged user, as `df` shows
    total: int


@dataclass(frozen=True)
class Reading:
    """Everything `status` read, at `now`. `unreachable`: the one line saying why Redis could
    not be read (then room, redis and backup are None)."""

    now: float
    disk: DiskUse
    unreachable: str | None = None
    room: RoomState | None = None
    redis: RedisHealth | None = None
    backup: Backup | None = None
    backup_unreadable: str | None = None


@dataclass(frozen=True)
class Finding:
    attention: bool  # something needs doing: the command exits 1
    text: str


def pull_workers(room: RoomState) -> list[WorkerShown]:
    """The worker agents (an endpoint's slots are workers in the queue too: shown with it)."""
    return [w for w in room["workers"] if endpoint_of(w["id"]) is None]


def findings(r: Reading) -> list[Finding]:
    """What needs attention first, then notes."""
    found = _room_findings(r.room) if r.room is not None else []
    if r.unreachable is not None:
        found.append(Finding(True, f"Redis unreachable: {r.unreachable}"))
    if r.redis is not None:
        found += _redis_findings(r.redis)
    found += _disk_findings(r.disk)
    if r.unreachable is None:
        found += _backup_findings(r.backup, r.backup_unreadable, r.now)
    return sorted(found, key=lambda f: not f.attention)


def exit_code(found: list[Finding]) -> int:
    return ATTENTION if any(f.attention for f in found) else OK


def _room_findings(room: RoomState) -> list[Finding]:
    waiting = len(room["queue"])
    online = any(w["state"] == "online" for w in pull_workers(room))
    endpoints = any(e["state"] != "failing" for e in room["endpoints"])
    found = []
    if waiting and not (online or endpoints):
        found.append(
            Finding(
                True,
                f"{waiting} job(s) wait and no worker or endpoint is connected: start a worker "
                "agent (comfy-workshop worker) or add an endpoint (comfy-workshop endpoint add)",
            )
        )
    held = sum(1 for j in room["queue"] if j["hold"])
    if held:
        found.append(Finding(False, f"{held} job(s) held: no connected GPU can run them"))
    return found


def _redis_findings(h: RedisHealth) -> list[Finding]:
    found = []
    if not h.aof_enabled:
        found.append(
            Finding(
                True,
                "Redis AOF is OFF: a crash loses every change since the last snapshot. Turn it "
                "on: redis-cli CONFIG SET appendonly yes, and `appendonly yes` in its config",
            )
        )
    elif h.aof_last_write_status != "ok" or h.aof_rewrite_status != "ok":
        found.append(
            Finding(
                True,
                f"Redis AOF is FAILING (last write {h.aof_last_write_status}, last rewrite "
                f"{h.aof_rewrite_status}): check free space and permissions of its folder",
            )
        )
    if h.rdb_last_status != "ok":
        found.append(
            Finding(True, "Redis's last snapshot (RDB) failed: it may refuse writes; see its log")
        )
    if h.aof_enabled and h.appendfsync == "no":
        found.append(Finding(False, "Redis appendfsync is 'no': a power cut may lose ~30 s"))
    return found


def _disk_findings(d: DiskUse) -> list[Finding]:
    if not d.exists:
        return [Finding(False, f"the data folder {d.folder} does not exist (wrong --data?)")]
    if d.free < LOW_FREE_BYTES or d.free < LOW_FREE_SHARE * d.total:
        return [
            Finding(
                True,
                f"the data folder's disk is nearly full: {human_bytes(d.free)} free of "
                f"{human_bytes(d.total)}; archive and reset the room (comfy-workshop room "
                "archive) or make room",
            )
        ]
    return []


def _backup_findings(b: Backup | None, unreadable: str | None, now: float) -> list[Finding]:
    if unreadable is not None:
        return [Finding(False, f"the last backup's record is unreadable: {unreadable}")]
    if b is None:
        return [Finding(False, "no backup yet: make one with `comfy-workshop backup`")]
    if now - b.finished_at.timestamp() > OLD_BACKUP_SECONDS:
        return [Finding(False, f"the last backup is {_age(now - b.finished_at.timestamp())} old")]
    return []


# -- showing it -------------------------------------------------------------------------------


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit}"
    return f"{s} s"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(r: Reading, found: list[Finding]) -> str:
    """One screen for a terminal over SSH: a line or a few per part, what needs attention last
    (where the eye lands when the command returns)."""
    lines = [f"Comfy Workshop status: {r.disk.folder}, {_when(r.now)}", ""]
    if r.room is not None:
        lines += _queue_lines(r.room)
    if r.redis is not None:
        lines.append(_redis_line(r.redis, r.now))
    elif r.unreachable is not None:
        lines.append(f"{'Redis':<10} UNREACHABLE (below)")
    lines.append(_disk_line(r.disk))
    if r.unreachable is None:
        lines.append(_backup_line(r.backup, r.backup_unreadable, r.now))
    attention = [f.text for f in found if f.attention]
    notes = [f.text for f in found if not f.attention]
    lines += ["", "ATTENTION:" if attention else "All good.", *(f"  ! {t}" for t in attention)]
    lines += [f"  - {t}" for t in notes]
    return "\n".join(lines)


def _queue_lines(room: RoomState) -> list[str]:
    queue = room["queue"]
    lanes = ", ".join(f"{lane} {n}" for lane, n in room["lanes"].items() if n)
    users = len({j["user"] for j in queue})
    paused = "; PAUSED by the instructor" if room["paused"] else ""
    waiting = f"{len(queue)} waiting" + (f" ({lanes}) from {users} user(s)" if queue else "")
    lines = [f"{'Queue':<10} {waiting}; {len(room['running'])} running{paused}"]
    workers = pull_workers(room)
    lines += _rows("Workers", [_worker_row(w) for w in workers] or ["none connected"])
    lines += _rows("Endpoints", [_endpoint_row(e) for e in room["endpoints"]] or ["none"])
    return lines


def _rows(title: str, rows: list[str]) -> list[str]:
    return [f"{title if i == 0 else '':<10} {row}" for i, row in enumerate(rows)]


def _worker_row(w: WorkerShown) -> str:
    job = f"  job {w['job']}" if w["job"] else ""
    return f"{w['id']:<16} {w['state']:<9} heartbeat {_age(w['heartbeat_age'])} ago{job}"


def _endpoint_row(e: EndpointShown) -> str:
    reason = f"  ({e['reason']})" if e["reason"] else ""
    return f"{e['name']:<16} {e['state']:<9} {e['running']}/{e['slots']} slot(s) busy{reason}"


def _redis_line(h: RedisHealth, now: float) -> str:
    if h.aof_enabled:
        fsync = f", fsync {h.appendfsync}" if h.appendfsync else ""
        aof = f"AOF on (last write {h.aof_last_write_status}{fsync})"
    else:
        aof = "AOF OFF"
    saved = f"{_age(now - h.rdb_last_save)} ago" if h.rdb_last_save else "never"
    return (
        f"{'Redis':<10} {h.version}, {human_bytes(h.used_memory)} used; {aof}; last snapshot "
        f"{saved} ({h.rdb_last_status})"
    )


def _disk_line(d: DiskUse) -> str:
    if not d.exists:
        return f"{'Disk':<10} {d.folder} does not exist"
    parts = ", ".join(f"{name} {human_bytes(d.parts.get(name, 0))}" for name in PARTS)
    share = f" ({d.free / d.total:.0%})" if d.total else ""
    return f"{'Disk':<10} {parts}; {human_bytes(d.free)} free of {human_bytes(d.total)}{share}"


def _backup_line(b: Backup | None, unreadable: str | None, now: float) -> str:
    if unreadable is not None:
        return f"{'Backup':<10} unreadable record"
    if b is None:
        return f"{'Backup':<10} never (make one: comfy-workshop backup)"
    at = b.finished_at.timestamp()
    return (
        f"{'Backup':<10} {_when(at)} ({_age(now - at)} ago) to {b.target}: "
        f"{human_bytes(b.bytes)}, {b.files} file(s)"
    )


def as_json(r: Reading, found: list[Finding]) -> dict[str, Any]:
    """The same as `render`, as one JSON-ready object (for scripts and monitoring)."""
    return {
        "now": _iso(r.now),
        "data_dir": r.disk.folder,
        "exit_code": exit_code(found),
        "attention": [f.text for f in found if f.attention],
        "notes": [f.text for f in found if not f.attention],
        "queue": _queue_json(r.room) if r.room is not None else None,
        "workers": [_worker_json(w) for w in pull_workers(r.room)] if r.room else None,
        "endpoints": [_endpoint_json(e) for e in r.room["endpoints"]] if r.room else None,
        "redis": _redis_json(r),
        "disk": _disk_json(r.disk),
        "backup": _backup_json(r.backup, r.now) if r.unreachable is None else None,
    }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _queue_json(room: RoomState) -> dict[str, Any]:
    return {
        "paused": room["paused"],
        "waiting": len(room["queue"]),
        "lanes": room["lanes"],
        "waiting_users": len({j["user"] for j in room["queue"]}),
        "running": len(room["running"]),
    }


def _worker_json(w: WorkerShown) -> dict[str, Any]:
    return {
        "name": w["id"],
        "state": w["state"],
        "heartbeat_age": round(w["heartbeat_age"], 1),
        "job": w["job"],
    }


def _endpoint_json(e: EndpointShown) -> dict[str, Any]:
    keys = ("name", "kind", "state", "reason", "running", "slots")
    return {k: e[k] for k in keys}  # type: ignore[literal-required]


def _redis_json(r: Reading) -> dict[str, Any]:
    if r.redis is None:
        return {"reachable": False, "error": r.unreachable}
    h = r.redis
    return {
        "reachable": True,
        "version": h.version,
        "used_memory": h.used_memory,
        "aof_enabled": h.aof_enabled,
        "aof_last_write_status": h.aof_last_write_status,
        "aof_last_bgrewrite_status": h.aof_rewrite_status,
        "appendfsync": h.appendfsync,
        "rdb_last_save": _iso(h.rdb_last_save) if h.rdb_last_save else None,
        "rdb_last_bgsave_status": h.rdb_last_status,
    }


def _disk_json(d: DiskUse) -> dict[str, Any]:
    return {
        "folder": d.folder,
        "exists": d.exists,
        "parts": dict(d.parts),
        "free": d.free,
        "total": d.total,
    }


def _backup_json(b: Backup | None, now: float) -> dict[str, Any] | None:
    if b is None:
        return None
    return {
        "id": b.id,
        "finished_at": b.finished_at.isoformat(),
        "age_seconds": round(now - b.finished_at.timestamp()),
        "target": b.target,
        "bytes": b.bytes,
        "files": b.files,
        "version": b.version,
    }
