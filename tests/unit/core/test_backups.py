"""Backups' pure rules: names, durations, the manifest and its checks, retention, records."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from queue_manager.core.backups import (
    BackupError,
    BadManifest,
    Listed,
    Manifest,
    Record,
    Stored,
    backup_id,
    backup_time,
    decode_records,
    encode_records,
    glob_escaped,
    last_record,
    mismatches,
    newest_complete,
    parse_duration,
    parse_manifest,
    to_delete,
)

NOW = datetime(2026, 12, 7, 14, 30, 5, tzinfo=UTC)


def at(hours_ago: float) -> str:
    return backup_id(NOW - timedelta(hours=hours_ago))


@pytest.mark.parametrize(
    ("taken", "name"),
    [
        ((), "2026-12-07T14-30-05Z"),
        (("2026-12-07T14-30-05Z",), "2026-12-07T14-30-05Z-2"),
        (("2026-12-07T14-30-05Z", "2026-12-07T14-30-05Z-2"), "2026-12-07T14-30-05Z-3"),
    ],
)
def test_a_backup_is_named_by_its_utc_second(taken: tuple[str, ...], name: str) -> None:
    assert backup_id(NOW, taken) == name


def test_a_local_time_is_named_in_utc() -> None:
    from datetime import timezone

    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    assert backup_id(paris) == "2026-12-07T14-30-05Z"


@pytest.mark.parametrize(
    ("name", "when"),
    [
        ("2026-12-07T14-30-05Z", NOW),
        ("2026-12-07T14-30-05Z-2", NOW),
        ("2026-12-07", None),
        (".2026-12-07T14-30-05Z", None),
        ("notes", None),
    ],
)
def test_only_backup_names_have_a_time(name: str, when: datetime | None) -> None:
    assert backup_time(name) == when


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("6h", 21600), ("1d", 86400), ("90s", 90), (" 1.5h ", 5400), ("2H", 7200)],
)
def test_periods_are_read_in_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "10s", "0m", "-1h", "6 hours", "1w"])
def test_a_period_under_a_minute_or_unreadable_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape("e.g. 30m, 6h, 1d")):
        parse_duration(text)


def manifest(**changes: object) -> Manifest:
    values: dict[str, object] = {
        "id": "2026-12-07T14-30-05Z",
        "product_version": "0.1.0",
        "created_at": NOW,
        "redis_version": "7.0.15",
        "key_prefix": "cw:",
        "key_count": 12,
        "files": 3,
        "file_bytes": 300,
        "objects": {"redis.snapshot": Stored(10, "a" * 64), "files.tar": Stored(4096, "b" * 64)},
    }
    values.update(changes)
    return Manifest(**values)  # type: ignore[arg-type]


def test_a_manifest_reads_back_as_written() -> None:
    made = manifest()
    assert parse_manifest(made.to_json()) == made
    assert made.stored_bytes == 4106


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"{", "not readable"),
        (b"[]", "not readable"),
        (b'{"format": 1}', "not readable"),
        (b'{"format": 2, "product_version": "9.0"}', "format 2, made by comfy-workshop 9.0"),
    ],
)
def test_a_bad_or_newer_manifest_is_refused_with_a_reason(raw: bytes, said: str) -> None:
    with pytest.raises(BadManifest, match=said):
        parse_manifest(raw)


def test_objects_that_differ_from_the_manifest_are_named() -> None:
    made = manifest()
    assert mismatches(made, dict(made.objects)) == []
    assert mismatches(made, {"files.tar": Stored(4096, "c" * 64)}) == [
        "files.tar does not match its checksum (sha256 cccccccccccc...)",
        "redis.snapshot is missing",
    ]
    assert mismatches(made, {**made.objects, "redis.snapshot": Stored(9, "a" * 64)}) == [
        "redis.snapshot has 9 bytes, the manifest says 10"
    ]


def test_the_last_backup_record_has_the_fields_status_reads() -> None:
    import json

    record = json.loads(last_record(manifest(), "s3://bucket/room", NOW))
    assert record == {
        "id": "2026-12-07T14-30-05Z",
        "finished_at": "2026-12-07T14:30:05+00:00",
        "target": "s3://bucket/room",
        "bytes": 4106,
        "files": 3,
        "version": "0.1.0",
    }


RETENTION = [
    # (backups: (hours ago, complete), keep, just made (hours ago), deleted (hours ago))
    ([(0, True), (1, True), (2, True)], 2, 0, [2]),
    ([(0, True), (1, True), (2, True)], 5, 0, []),
    ([(0, True), (1, True), (2, True), (3, True)], 1, 0, [1, 2, 3]),
    # the one just made is kept even when newer ones exist (a clock set back)
    ([(0, True), (1, True), (2, True)], 1, 2, [1]),
    # unfinished ones: kept for a day (maybe being written now), then removed; never counted
    ([(0, True), (1, False), (30, False), (2, True)], 1, 0, [30, 2]),
]


@pytest.mark.parametrize(("backups", "keep", "made", "deleted"), RETENTION)
def test_retention_keeps_the_newest_complete_backups(
    backups: list[tuple[float, bool]], keep: int, made: float, deleted: list[float]
) -> None:
    listed = [Listed(at(h), done) for h, done in backups]
    assert to_delete(listed, keep, at(made), NOW) == sorted(at(h) for h in deleted)


def test_the_newest_complete_backup_is_restored_by_default() -> None:
    listed = [Listed(at(3), True), Listed(at(1), True), Listed(at(0), False)]
    assert newest_complete(listed) == at(1)
    assert newest_complete([Listed(at(0), False)]) is None


def test_a_second_backup_in_the_same_second_sorts_after_the_first() -> None:
    first = backup_id(NOW)
    second = backup_id(NOW, [first])
    third = backup_id(NOW + timedelta(seconds=1))
    listed = [Listed(third, True), Listed(second, True), Listed(first, True)]
    assert to_delete(listed, 2, third, NOW) == [first]


def test_records_read_back_as_written() -> None:
    records = [
        Record(b"cw:job:1", -1, b"\x00\x01payload"),
        Record(b"cw:card:\xff", 1_800_000_000_000, b""),
    ]
    data = b"".join(encode_records(records))
    assert decode_records(data) == records
    assert decode_records(b"".join(encode_records([]))) == []


@pytest.mark.parametrize("cut", [1, 9, 20])
def test_a_cut_or_foreign_snapshot_is_refused(cut: int) -> None:
    data = b"".join(encode_records([Record(b"cw:a", -1, b"0123456789")]))
    with pytest.raises(BackupError):
        decode_records(data[:-cut] if cut != 20 else b"not ours" + data)


@pytest.mark.parametrize(
    ("prefix", "pattern"), [("cw:", "cw:"), ("t[1]*?:", "t\\[1\\]\\*\\?:"), ("a\\b", "a\\\\b")]
)
def test_a_prefix_is_matched_literally(prefix: str, pattern: str) -> None:
    assert glob_escaped(prefix) == pattern
