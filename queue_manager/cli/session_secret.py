"""The secret that signs a local workshop's session cookies: CW_SECRET_KEY when it is a real one,
otherwise a random one made on first start and kept in DATA/secret_key (mode 0600), so that
logins survive a restart and nobody can sign a cookie with a secret printed in our docs."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from pydantic import SecretStr

from queue_manager.settings import PLACEHOLDER_SECRETS, Settings

log = logging.getLogger(__name__)

SECRET_FILE = "secret_key"
_MIN_LENGTH = 32


class SecretFileError(RuntimeError):
    pass


def with_session_secret(settings: Settings) -> Settings:
    """`settings` with a real session secret: the explicit one, or the data folder's."""
    if not settings.has_placeholder_secret():
        return settings
    secret = kept_secret(settings.data_dir / SECRET_FILE)
    return settings.model_copy(update={"secret_key": SecretStr(secret)})


def kept_secret(path: Path) -> str:
    """The secret in `path`, made (random, 0600 from the start) when there is none yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never overwrite a secret that exists (every login would be lost).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    secret = secrets.token_urlsafe(_MIN_LENGTH)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    log.info("made a random session secret in %s", path)
    return secret


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s was readable by others (mode %o); made it 0600", path, mode)
    secret = path.read_text().strip()
    if len(secret) < _MIN_LENGTH or secret in PLACEHOLDER_SECRETS:
        raise SecretFileError(
            f"{path} does not hold a usable secret (at least {_MIN_LENGTH} characters); "
            f"delete it and start again to make a new one (everyone then logs in again)"
        )
    return secret
