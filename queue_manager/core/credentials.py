"""Who calls the worker API (pure): a worker by its own token, or one pushed job attempt by a
lease token.

A lease token lets our agent in a serverless image (endpoint kind `agent`) report one job the
queue manager pushed to it, as the endpoint's slot worker `NAME.K` that holds the job:

    cwl.<payload>.<mac>
    payload = base64url(JSON {"w": worker, "j": job id, "a": attempt, "e": expiry (epoch s)})
    mac     = base64url(HMAC-SHA256(key, "cwl." + payload)),  key = HMAC-SHA256(secret, purpose)

It is minted per pushed attempt and stored nowhere: every queue-manager process that knows the
secret checks it, so no Redis read is needed and nothing is left to revoke. It acts only on the
job routes of that attempt (and every one of them checks the attempt is still held by that
worker); joining, claiming, publishing a catalogue or leaving need the worker's own token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from queue_manager.core.endpoints import endpoint_of
from queue_manager.core.errors import LeaseTokenRefused
from queue_manager.core.ids import JobId, WorkerId

PREFIX = "cwl"
# The key derived for lease tokens: the same secret signs session cookies, and a value signed
# for one purpose must never pass as the other.
_PURPOSE = b"cw-lease-token-v1"


@dataclass(frozen=True)
class LeaseGrant:
    worker: WorkerId
    job: JobId
    attempt: int
    expires: float


@dataclass(frozen=True)
class WorkerCredential:
    """An authenticated caller of the worker API. `lease` is set for a lease token."""

    worker: WorkerId
    lease: LeaseGrant | None = None

    def whole(self) -> WorkerId:
        """The worker itself (join, claim, catalogue, leave): a lease token is refused."""
        if self.lease is not None:
            raise LeaseTokenRefused(self.worker, "it acts on its own job only")
        return self.worker

    def acting_on(self, job_id: JobId | None, attempt: int) -> WorkerId:
        """The worker, acting on `job_id`'s `attempt`: a lease token only on its own."""
        lease = self.lease
        if lease is not None and (job_id != lease.job or attempt != lease.attempt):
            raise LeaseTokenRefused(self.worker, f"it acts on job {lease.job} only")
        return self.worker


def mint_lease_token(secret: str, grant: LeaseGrant) -> str:
    body = {"w": grant.worker, "j": grant.job, "a": grant.attempt, "e": round(grant.expires, 3)}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{PREFIX}.{payload}.{_mac(secret, payload)}"


def read_lease_token(secret: str, token: str, now: float) -> LeaseGrant | None:
    """The grant a lease token carries, if it is ours, untampered and not expired."""
    prefix, _, rest = token.partition(".")
    payload, _, mac = rest.partition(".")
    if prefix != PREFIX or not payload or not mac:
        return None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        return None
    grant = _grant(payload)
    if grant is None or grant.expires <= now or endpoint_of(grant.worker) is None:
        return None
    return grant


def _grant(payload: str) -> LeaseGrant | None:
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        worker, job, attempt, expires = body["w"], body["j"], body["a"], body["e"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        return None
    if not (isinstance(worker, str) and isinstance(job, str) and type(attempt) is int):
        return None
    if not isinstance(expires, int | float):
        return None
    return LeaseGrant(WorkerId(worker), JobId(job), attempt, float(expires))


def _mac(secret: str, payload: str) -> str:
    key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
    return _b64(hmac.new(key, f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
