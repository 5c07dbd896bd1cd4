"""The Redis side of backups against the real private Redis: one prefix read and replaced, others
untouched, expiries kept, and a snapshot this Redis cannot load refused before any change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.backups import BackupError, Record
from queue_manager.store.snapshot import (
    check_loadable,
    open_client,
    read_snapshot,
    replace_all,
    server_time_ms,
)


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    c = open_client(redis_server.url)
    yield c
    c.close()


def test_a_snapshot_is_one_prefix_with_its_expiries(client: redis.Redis, prefix: str) -> None:
    client.set(f"{prefix}a", "1")
    client.set(f"{prefix}card:x", "2", px=60_000)
    client.set(f"{prefix}backup:last", "{}")  # about backups, not the workshop: left out
    client.set(f"other-{prefix}a", "3")
    snap = read_snapshot(client, prefix)
    by_key = {r.key: r for r in snap.records}
    assert set(by_key) == {f"{prefix}a".encode(), f"{prefix}card:x".encode()}
    assert by_key[f"{prefix}a".encode()].expire_at_ms == -1
    assert 0 < by_key[f"{prefix}card:x".encode()].expire_at_ms - snap.taken_at_ms <= 60_000


def test_replacing_a_prefix_leaves_other_prefixes_and_the_backup_record(
    client: redis.Redis, prefix: str
) -> None:
    client.set(f"{prefix}a", "1")
    client.set(f"{prefix}gone", "expired since the backup", px=60_000)
    snap = read_snapshot(client, prefix)
    client.set(f"{prefix}a", "changed")
    client.set(f"{prefix}new", "made after the backup")
    client.set(f"{prefix}backup:last", "{}")
    client.set(f"other-{prefix}a", "3")
    later = server_time_ms(client) + 120_000  # as if restored two minutes later
    assert replace_all(client, prefix, snap.records, later) == 1
    assert client.get(f"{prefix}a") == b"1"
    assert client.exists(f"{prefix}new", f"{prefix}gone") == 0
    assert client.get(f"{prefix}backup:last") == b"{}"
    assert client.get(f"other-{prefix}a") == b"3"


def test_a_snapshot_this_redis_cannot_load_is_refused_with_the_versions(
    client: redis.Redis, prefix: str
) -> None:
    client.set(f"{prefix}a", "1")
    payload = bytearray(read_snapshot(client, prefix).records[0].payload)
    payload[-10] = 250  # the RDB version (before the CRC's 8 bytes) of a future Redis
    with pytest.raises(BackupError, match=r"cannot load the snapshot made by Redis 99\.0"):
        check_loadable(client, prefix, Record(b"x", -1, bytes(payload)), "99.0")
    assert client.get(f"{prefix}a") == b"1"
    assert client.exists(f"{prefix}backup:probe") == 0
