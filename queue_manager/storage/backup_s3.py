"""Backups in an S3-compatible bucket (boto3): `s3://bucket/prefix/<id>/<object>`.

Every call has connect and read timeouts and a few retries (botocore's standard mode). Checksums
are sent only where the API requires them: third-party stores (R2, MinIO, B2) refuse or lag
behind AWS's newer default checksums; we keep our own SHA-256 in the manifest anyway.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from queue_manager.core.backups import BackupError, Listed, backup_time
from queue_manager.storage.backup_targets import CHUNK, OnBytes, Sink

PART = 64 * 1024 * 1024  # S3 allows 10,000 parts: backups up to 640 GB
_CONFIG = Config(
    connect_timeout=10,
    read_timeout=120,
    retries={"max_attempts": 4, "mode": "standard"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)
_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403")


def _client() -> Any:
    endpoint = os.environ.get("CW_BACKUP_S3_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    # R2 wants `auto`; MinIO and B2 take any name: only AWS itself needs the real one.
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=region or ("auto" if endpoint else None),
        config=_CONFIG,
    )  # fmt: skip


@contextlib.contextmanager
def _said(where: str) -> Iterator[None]:
    """botocore's errors as one line with what to do next."""
    endpoint = os.environ.get("CW_BACKUP_S3_ENDPOINT_URL") or "AWS S3"
    try:
        yield
    except NoCredentialsError:
        raise BackupError(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except NoRegionError:
        raise BackupError("no S3 region: set AWS_REGION (R2: auto)") from None
    except EndpointConnectionError:
        raise BackupError(
            f"cannot reach {endpoint}: check CW_BACKUP_S3_ENDPOINT_URL and the network"
        ) from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            raise BackupError(f"no bucket for {where} at {endpoint}: create it first") from None
        if code in _CREDENTIALS:
            raise BackupError(
                f"{endpoint} refused the credentials for {where} ({code}): check "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the key's rights on the bucket"
            ) from None
        raise BackupError(f"{endpoint} answered {code or exc} for {where}") from None
    except BotoCoreError as exc:
        raise BackupError(f"S3 at {endpoint} failed for {where}: {exc}") from None


class _Upload:
    """One object written as a multipart upload, a part at a time (memory: one part)."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._id: str | None = None

    def write(self, data: bytes, /) -> int:
        self._buffer += data
        while len(self._buffer) >= PART:
            self._send(bytes(self._buffer[:PART]))
            del self._buffer[:PART]
        return len(data)

    def _send(self, body: bytes) -> None:
        if self._id is None:
            started = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._id = str(started["UploadId"])
        n = len(self._parts) + 1
        sent = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._id, PartNumber=n, Body=body
        )
        self._parts.append({"PartNumber": n, "ETag": sent["ETag"]})

    def finish(self) -> None:
        if self._id is None:  # small: one plain PUT
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            return
        if self._buffer:
            self._send(bytes(self._buffer))
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._id is not None:
            with contextlib.suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._id
                )


class S3Target:
    def __init__(self, where: str, bucket: str, prefix: str) -> None:
        self.where = where
        self._bucket = bucket
        self._base = f"{prefix}/" if prefix else ""
        with _said(where):
            self._client = _client()

    def _key(self, backup: str, name: str = "") -> str:
        return f"{self._base}{backup}/{name}"

    def _objects(self, under: str) -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self._bucket, Prefix=under):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def list(self) -> list[Listed]:
        found: dict[str, bool] = {}
        with _said(self.where):
            for key in self._objects(self._base):
                backup, _, name = key.removeprefix(self._base).partition("/")
                if backup_time(backup) is not None:
                    found[backup] = found.get(backup, False) or name == "manifest.json"
        return [Listed(b, complete) for b, complete in found.items()]

    @contextlib.contextmanager
    def writer(self, backup: str, name: str) -> Iterator[Sink]:
        upload = _Upload(self._client, self._bucket, self._key(backup, name))
        with _said(self.where):
            try:
                yield upload
                upload.finish()
            except BaseException:
                upload.abort()
                raise

    def exists(self, backup: str, name: str) -> bool:
        with _said(self.where):
            return any(k == self._key(backup, name) for k in self._objects(self._key(backup, name)))

    def fetch(self, backup: str, name: str, folder: Path, on_bytes: OnBytes) -> Path:
        path = folder / name
        with _said(self.where):
            got = self._client.get_object(Bucket=self._bucket, Key=self._key(backup, name))
            with path.open("wb") as out:
                for chunk in got["Body"].iter_chunks(CHUNK):
                    out.write(chunk)
                    on_bytes(len(chunk))
        return path

    def delete(self, backup: str) -> None:
        under = self._key(backup)
        with _said(self.where):
            keys = list(self._objects(under))
            for i in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[i : i + 1000]]
                self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": batch})
            self._abort_uploads(under)

    def _abort_uploads(self, under: str) -> None:
        """Uploads a crash left open: their parts are stored (and billed) until aborted."""
        listed = self._client.list_multipart_uploads(Bucket=self._bucket, Prefix=under)
        for upload in listed.get("Uploads", []):
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
