"""What the backup tests share: a workshop's Redis contents read as plain values (to compare a
restored workshop with the one backed up), its files, and moto's S3 server on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from redis.asyncio import Redis

from queue_manager.cli.redis_server import free_port

BACKED_UP = ("outputs", "inputs", "userdata", "secret_key", "credentials.csv")


async def contents(redis: Redis, prefix: str) -> dict[str, object]:
    """Every key under `prefix` (but the newest-backup record) with its type and value."""
    found: dict[str, object] = {}
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        if key != f"{prefix}backup:last":
            found[key] = await _value(redis, key)
    return found


async def _value(redis: Redis, key: str) -> object:
    kind = await redis.type(key)
    if kind == "string":
        return kind, await redis.get(key)
    if kind == "hash":
        return kind, await redis.hgetall(key)
    if kind == "list":
        return kind, await redis.lrange(key, 0, -1)
    if kind == "set":
        return kind, sorted(await redis.smembers(key))
    if kind == "zset":
        return kind, await redis.zrange(key, 0, -1, withscores=True)
    if kind == "stream":
        return kind, await redis.xrange(key)
    raise AssertionError(f"{key}: a {kind} the tests do not compare")


async def wipe(redis: Redis, prefix: str, data: Path) -> None:
    """What a lost server leaves: no keys under the prefix, no backed-up files."""
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)
    for name in BACKED_UP:
        path = data / name
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                child.rmdir() if child.is_dir() else child.unlink()
            path.rmdir()
        else:
            path.unlink(missing_ok=True)


def files(data: Path) -> dict[str, bytes]:
    """Every backed-up file below `data` with its bytes (hidden files being written: not)."""
    return {
        str(p.relative_to(data)): p.read_bytes()
        for name in BACKED_UP
        for p in ([data / name] if (data / name).is_file() else (data / name).rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def env(self) -> dict[str, str]:
        """Dummy credentials, for this test's commands only."""
        return {
            "CW_BACKUP_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }

    def objects(self) -> list[str]:
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        listed = client.list_objects_v2(Bucket=self.bucket)
        return sorted(str(o["Key"]) for o in listed.get("Contents", []))


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible HTTP server on a free port of this machine."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server: str, prefix: str) -> S3:
    """A bucket of this test's own."""
    bucket = "backups-" + prefix.rstrip(":")
    boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    return S3(s3_server, bucket)
