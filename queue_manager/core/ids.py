"""Identifier types and the rules that make a string one of them."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import NewType

JobId = NewType("JobId", str)
UserId = NewType("UserId", str)
WorkerId = NewType("WorkerId", str)
# A login session: random, named in the signed cookie and in the account's record.
SessionId = NewType("SessionId", str)

# ComfyUI 0.25 accepts only a canonical lowercase hyphenated UUID as `prompt_id`; we pass our
# job id as the prompt id, so a job id is exactly that.
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# User and worker names end up in Redis keys, file paths and URLs: keep them boring.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def new_session_id() -> SessionId:
    return SessionId(secrets.token_urlsafe(16))


def new_job_id() -> JobId:
    return JobId(str(uuid.uuid4()))


def is_job_id(value: str) -> bool:
    return bool(_UUID.match(value))


def is_name(value: str) -> bool:
    """A user or worker name: lowercase letters, digits, `-` and `_`, at most 64 characters."""
    return bool(_NAME.match(value))
