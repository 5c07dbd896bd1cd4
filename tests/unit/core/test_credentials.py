"""Lease tokens: minted per pushed attempt, read back only untampered, unexpired and with the
secret that signed them; a lease token acts on its own job attempt only."""

from __future__ import annotations

import base64
import json

import pytest

from queue_manager.core.credentials import (
    LeaseGrant,
    WorkerCredential,
    mint_lease_token,
    read_lease_token,
)
from queue_manager.core.errors import LeaseTokenRefused
from queue_manager.core.ids import JobId, WorkerId

SECRET = "a-secret-of-some-length-for-tests"
JOB = JobId("0b3f1c3e-8a46-4a7e-9a5c-6d1f0f3c2b11")
GRANT = LeaseGrant(WorkerId("box.1"), JOB, 2, 1000.0)
TOKEN = mint_lease_token(SECRET, GRANT)


def forged_payload(**changes: object) -> str:
    """TOKEN with its payload changed but its signature kept."""
    prefix, payload, mac = TOKEN.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{prefix}.{raw}.{mac}"


def test_a_minted_token_reads_back_as_its_grant_until_it_expires() -> None:
    assert TOKEN.startswith("cwl.")
    assert read_lease_token(SECRET, TOKEN, now=999.0) == GRANT
    assert read_lease_token(SECRET, TOKEN, now=1000.0) is None


@pytest.mark.parametrize(
    ("token", "secret"),
    [
        (TOKEN, "another-secret-of-some-length"),
        (forged_payload(a=3), SECRET),
        (forged_payload(j="another-job"), SECRET),
        (forged_payload(w="gpu1"), SECRET),
        (forged_payload(e=10**12), SECRET),
        (TOKEN[:-2] + ("AA" if not TOKEN.endswith("AA") else "BB"), SECRET),
        (TOKEN.replace("cwl.", "cwt.", 1), SECRET),
        ("cwl.", SECRET),
        ("cwl..", SECRET),
        ("cwl.bm90IGpzb24.x", SECRET),
        ("", SECRET),
    ],
)
def test_a_token_tampered_with_or_signed_elsewhere_is_refused(token: str, secret: str) -> None:
    assert read_lease_token(secret, token, now=0.0) is None


@pytest.mark.parametrize(
    ("worker", "job", "attempt", "expires"),
    [
        ("gpu1", JOB, 1, 1000.0),  # a pull worker's name: lease tokens are for slots only
        ("box.1", JOB, "1", 1000.0),
        ("box.1", 7, 1, 1000.0),
        ("box.1", JOB, True, 1000.0),
    ],
)
def test_a_token_signed_for_a_malformed_grant_is_refused(
    worker: object, job: object, attempt: object, expires: object
) -> None:
    token = mint_lease_token(SECRET, LeaseGrant(worker, job, attempt, expires))  # type: ignore[arg-type]
    assert read_lease_token(SECRET, token, now=0.0) is None


def test_a_workers_own_token_acts_on_anything_it_holds() -> None:
    own = WorkerCredential(WorkerId("gpu1"))
    assert own.whole() == "gpu1"
    assert own.acting_on(JOB, 5) == "gpu1"
    assert own.acting_on(None, 0) == "gpu1"


@pytest.mark.parametrize(
    ("job", "attempt", "allowed"),
    [
        (JOB, 2, True),
        (JOB, 1, False),
        (JOB, 3, False),
        (JobId("another-job"), 2, False),
        (None, 0, False),  # an idle heartbeat: the slot's own business
    ],
)
def test_a_lease_token_acts_on_its_own_attempt_only(
    job: JobId | None, attempt: int, allowed: bool
) -> None:
    lease = WorkerCredential(GRANT.worker, GRANT)
    if allowed:
        assert lease.acting_on(job, attempt) == "box.1"
    else:
        with pytest.raises(LeaseTokenRefused):
            lease.acting_on(job, attempt)


def test_a_lease_token_is_never_the_worker_itself() -> None:
    with pytest.raises(LeaseTokenRefused):
        WorkerCredential(GRANT.worker, GRANT).whole()
