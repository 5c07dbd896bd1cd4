"""What `comfy-workshop status` judges and shows (pure): findings, exit code, text and JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from queue_manager.core.operator_status import (
    ATTENTION,
    OK,
    Backup,
    DiskUse,
    Reading,
    RedisHealth,
    as_json,
    exit_code,
    findings,
    parse_backup,
    render,
)
from queue_manager.core.room import RoomState

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
GB = 10**9
DISK = DiskUse(
    "/srv/data", True, {"outputs": 2 * GB, "inputs": 1000, "userdata": 10}, 50 * GB, 200 * GB
)
HEALTHY = RedisHealth("7.0.15", 4_000_000, True, "ok", "ok", NOW - 60, "ok", "everysec")
BACKUP = Backup(
    "2026-12-07T03-00-00Z", datetime(2026, 12, 7, 3, 0, tzinfo=UTC), "/backups", GB, 120, "0.1.0"
)


def room(
    waiting: int = 0,
    workers: tuple[str, ...] = (),
    endpoints: tuple[str, ...] = (),
    paused: bool = False,
) -> RoomState:
    queue: list[Any] = [
        {"id": f"j{i}", "user": f"user00{i % 2}", "lane": "normal", "hold": None}
        for i in range(waiting)
    ]
    shown_workers: list[Any] = [
        {"id": f"gpu{i}", "state": s, "job": None, "heartbeat_age": 2.0}
        for i, s in enumerate(workers)
    ]
    shown_endpoints: list[Any] = [
        {"name": f"ep{i}", "kind": "comfyui", "state": s, "reason": "", "running": 0, "slots": 2}
        for i, s in enumerate(endpoints)
    ]
    state: Any = {
        "paused": paused,
        "lanes": {"instructor": 0, "high": 0, "normal": waiting, "low": 0},
        "queue": queue,
        "running": [],
        "workers": shown_workers,
        "endpoints": shown_endpoints,
    }
    return state  # type: ignore[no-any-return]


def reading(**changes: Any) -> Reading:
    base: dict[str, Any] = {
        "now": NOW,
        "disk": DISK,
        "room": room(),
        "redis": HEALTHY,
        "backup": BACKUP,
    }
    return Reading(**(base | changes))


@pytest.mark.parametrize(
    ("case", "changes", "expected", "says"),
    [
        ("all well", {}, OK, None),
        ("jobs wait, no GPU", {"room": room(3)}, ATTENTION, "3 job(s) wait and no worker"),
        ("jobs wait, offline GPU", {"room": room(1, ("offline",))}, ATTENTION, "no worker"),
        ("jobs wait, online GPU", {"room": room(3, ("online",))}, OK, None),
        ("jobs wait, an endpoint", {"room": room(3, (), ("cold",))}, OK, None),
        ("jobs wait, failing endpoint", {"room": room(3, (), ("failing",))}, ATTENTION, "wait"),
        ("no jobs, no GPU", {"room": room(0)}, OK, None),
        (
            "AOF off",
            {"redis": RedisHealth("7", 1, False, "ok", "ok", None, "ok", "no")},
            ATTENTION,
            "AOF is OFF",
        ),
        (
            "AOF failing",
            {"redis": RedisHealth("7", 1, True, "err", "ok", None, "ok", None)},
            ATTENTION,
            "AOF is FAILING",
        ),
        (
            "RDB failing",
            {"redis": RedisHealth("7", 1, True, "ok", "ok", None, "err", None)},
            ATTENTION,
            "snapshot (RDB) failed",
        ),
        (
            "disk under 5 GB",
            {"disk": DiskUse("/d", True, {}, 4 * GB, 20 * GB)},
            ATTENTION,
            "nearly full",
        ),
        (
            "disk under 10 %",
            {"disk": DiskUse("/d", True, {}, 90 * GB, 1000 * GB)},
            ATTENTION,
            "nearly full",
        ),
        ("no backup", {"backup": None}, OK, "no backup yet"),
        (
            "Redis unreachable",
            {
                "room": None,
                "redis": None,
                "backup": None,
                "unreachable": "no workshop is running on ./data",
            },
            ATTENTION,
            "Redis unreachable: no workshop is running",
        ),
    ],
)
def test_each_situation_is_judged_and_said(
    case: str, changes: dict[str, Any], expected: int, says: str | None
) -> None:
    found = findings(reading(**changes))
    assert exit_code(found) == expected, case
    if says is not None:
        assert any(says in f.text for f in found), [f.text for f in found]
    if expected == OK:
        assert all(not f.attention for f in found)


def test_what_needs_attention_comes_before_notes() -> None:
    found = findings(reading(room=room(2), backup=None))
    assert [f.attention for f in found] == [True, False]


def test_the_screen_shows_every_part_in_one_line_or_a_few() -> None:
    text = render(reading(room=room(3, ("online", "offline"), paused=True)), [])
    assert "Queue      3 waiting (normal 3) from 2 user(s); 0 running; PAUSED" in text
    assert "gpu0             online    heartbeat 2 s ago" in text
    assert "gpu1             offline" in text
    assert "Redis      7.0.15, 4.0 MB used; AOF on (last write ok, fsync everysec)" in text
    assert "last snapshot 1 min ago (ok)" in text
    assert "Disk       outputs 2.0 GB, inputs 1.0 kB, userdata 10 B; 50.0 GB free" in text
    assert "Backup     2026-12-07 03:00:00 UTC (9 h ago) to /backups: 1.0 GB, 120 file(s)" in text
    assert text.endswith("All good.")


def test_an_endpoint_slot_is_shown_with_its_endpoint_not_as_a_worker() -> None:
    state = room(0, ("online",), ("ready",))
    state["workers"].append({"id": "ep0.1", "state": "online", "job": None, "heartbeat_age": 0})
    shown = as_json(reading(room=state), [])
    assert [w["name"] for w in shown["workers"]] == ["gpu0"]
    assert shown["endpoints"][0] == {
        "name": "ep0",
        "kind": "comfyui",
        "state": "ready",
        "reason": "",
        "running": 0,
        "slots": 2,
    }


def test_unreachable_redis_still_shows_the_disk_and_no_backup_line() -> None:
    r = reading(room=None, redis=None, backup=None, unreachable="start it")
    text = render(r, findings(r))
    assert "Redis      UNREACHABLE" in text and "Disk       outputs 2.0 GB" in text
    assert "Backup" not in text
    shown = as_json(r, findings(r))
    assert shown["redis"] == {"reachable": False, "error": "start it"}
    assert shown["queue"] is None and shown["disk"]["free"] == 50 * GB
    assert shown["exit_code"] == ATTENTION


def test_the_json_is_the_same_reading_and_serialisable() -> None:
    r = reading(room=room(1, ("online",)))
    shown = json.loads(json.dumps(as_json(r, findings(r))))
    assert shown["queue"] == {
        "paused": False,
        "waiting": 1,
        "running": 0,
        "waiting_users": 1,
        "lanes": {"instructor": 0, "high": 0, "normal": 1, "low": 0},
    }
    assert shown["redis"]["aof_enabled"] is True
    assert shown["backup"]["age_seconds"] == 9 * 3600
    assert shown["exit_code"] == OK and shown["attention"] == []


def test_redis_info_is_read_into_health() -> None:
    info = {
        "redis_version": "7.2.4",
        "used_memory": 123,
        "aof_enabled": 0,
        "aof_last_write_status": "ok",
        "rdb_last_save_time": 0,
        "rdb_last_bgsave_status": "err",
    }
    health = RedisHealth.from_info(info, None)
    assert health == RedisHealth("7.2.4", 123, False, "ok", "ok", None, "err", None)


def test_a_backup_record_is_parsed_and_a_broken_one_refused() -> None:
    raw = json.dumps(
        {
            "id": "b1",
            "finished_at": "2026-12-07T03:00:00+00:00",
            "target": "s3://x",
            "bytes": 5,
            "files": 2,
            "version": "0.1.0",
        }
    )
    assert parse_backup(raw) == Backup(
        "b1", datetime(2026, 12, 7, 3, tzinfo=UTC), "s3://x", 5, 2, "0.1.0"
    )
    for broken in ("not json", "{}", '{"id": "b", "finished_at": "yesterday"}', "[]"):
        with pytest.raises(ValueError, match="not a backup record"):
            parse_backup(broken)
    found = findings(reading(backup=None, backup_unreadable="not a backup record (x)"))
    assert exit_code(found) == OK and "unreadable" in found[0].text
