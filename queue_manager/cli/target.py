"""Which workshop an operator command acts on: the one running on a data folder (`--data DIR`,
else CW_DATA_DIR, else ./data), found by itself.

`comfy-workshop up` starts a private Redis on a port that changes at every start; the port is
in DATA/redis/redis.conf (written anew at each start) and the server is asked whether it is
alive and really serves that folder (a stale file may name a port some other Redis took
since). A CW_REDIS_URL the operator set to something other than the default (a deployment's
own Redis, `serve`) is used as it is."""

from __future__ import annotations

import argparse
from pathlib import Path

import redis
from redis.exceptions import RedisError

from queue_manager.cli.redis_server import configured_port
from queue_manager.settings import Settings

# A workshop on this machine answers at once; a dead port is refused at once.
PING_TIMEOUT = 2.0
DEFAULT_REDIS_URL = str(Settings.model_fields["redis_url"].default)


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """`--data DIR` for an operator subcommand; `main` puts it into Settings.data_dir."""
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="the workshop's data folder (default: CW_DATA_DIR, else ./data)",
    )


def workshop_settings(settings: Settings) -> Settings:
    """`settings` aimed at the running workshop's Redis; SystemExit with one line saying what to
    do when none runs there."""
    url = str(settings.redis_url)
    explicit = "redis_url" in settings.model_fields_set
    if explicit and url != DEFAULT_REDIS_URL:
        if not _answers(url):
            raise SystemExit(
                f"comfy-workshop: no Redis answers at CW_REDIS_URL={_shown(url)}: start it, "
                "or unset CW_REDIS_URL to use the workshop of a data folder (--data DIR)"
            )
        return settings
    found = running_redis_url(settings.data_dir)
    if found is None and explicit and _answers(url):
        found = url  # CW_REDIS_URL set to the usual local Redis (.env.example's value)
    if found is None:
        raise SystemExit(
            f"comfy-workshop: no workshop is running on {_folder(settings.data_dir)}: start it "
            "with `make run`, or give --data DIR / CW_REDIS_URL"
        )
    return settings.model_copy(update={"redis_url": found})


def running_redis_url(data_dir: Path) -> str | None:
    """The URL of the private Redis `up` runs for `data_dir`, if it is alive and serves it."""
    directory = (data_dir / "redis").resolve()
    port = configured_port(directory)
    if port is None:
        return None
    url = f"redis://127.0.0.1:{port}/0"
    return url if _answers(url, serving=directory) else None


def _answers(url: str, serving: Path | None = None) -> bool:
    """Redis at `url` answers PING (and, if given, keeps its data in `serving`)."""
    client = redis.Redis.from_url(
        url,
        socket_timeout=PING_TIMEOUT,
        socket_connect_timeout=PING_TIMEOUT,
        decode_responses=True,
    )
    try:
        if not client.ping():
            return False
        if serving is None:
            return True
        where = client.config_get("dir").get("dir")
        return where is not None and Path(where) == serving
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def _shown(url: str) -> str:
    """The URL without a password in it."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"


def _folder(path: Path) -> str:
    """A folder as the operator would type it: ./data rather than data."""
    return str(path) if path.is_absolute() or str(path).startswith(".") else f"./{path}"
