"""The workshop's accounts for a local `comfy-workshop up`: user001..userNNN and an instructor,
with random passwords written once to DATA/credentials.csv (mode 0600) and reused after."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from queue_manager.core.accounts import Role
from queue_manager.store.accounts import AccountStore, new_password

INSTRUCTOR = "instructor"


def participant_names(count: int) -> list[str]:
    width = max(3, len(str(count)))
    return [f"user{i:0{width}d}" for i in range(1, count + 1)]


def read_credentials(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (role, password) from an existing credentials file (empty if none)."""
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {row["user"]: (row["role"], row["password"]) for row in csv.DictReader(fh)}


def write_credentials(path: Path, rows: dict[str, tuple[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["user", "role", "password"])
    for name, (role, password) in rows.items():
        writer.writerow([name, role, password])
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the passwords are never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        fh.write(buf.getvalue())
    os.chmod(path, 0o600)


async def ensure_roster(accounts: AccountStore, path: Path, participants: int) -> int:
    """Create the accounts the file does not list yet (and reset those Redis lost); returns how
    many were created. A second start with the same data folder changes nothing."""
    rows = read_credentials(path)
    wanted = dict.fromkeys(participant_names(participants), Role.PARTICIPANT.value)
    wanted[INSTRUCTOR] = Role.INSTRUCTOR.value
    created = 0
    for name, role in wanted.items():
        if name not in rows:
            rows[name] = (role, new_password())
            created += 1
        role_, password = rows[name]
        if await accounts.get(name) is None:
            await accounts.add(name, Role(role_), password)
    if created:
        write_credentials(path, rows)
    return created
