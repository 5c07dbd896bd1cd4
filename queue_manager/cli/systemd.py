"""`comfy-workshop systemd install|print`: systemd units for a native deployment, with the data
folder laid out as docker compose lays it (deploy/systemd_units.py says how).

`install` writes the units into ROOT/etc/systemd/system, creates the `comfy-workshop` user and
group (uid/gid 10001, the image's) when missing, the data folder owned by it, and an env file
from .env.example's variables with a random session secret unless one exists (never
overwritten), then prints the commands that start them. It starts nothing. `--root DIR` writes
everything under DIR and creates no user (tests, packaging); `--dry-run` writes nothing.
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from queue_manager.deploy.systemd_units import (
    GID,
    UID,
    UNITS,
    USER,
    Layout,
    UnitOptionError,
    env_conflicts,
    next_steps,
    render_env_file,
    render_unit,
)
from queue_manager.settings import Settings

DEFAULT_DATA = Path("/srv/comfy-workshop/data")
DEFAULT_ENV_FILE = Path("/etc/comfy-workshop/comfy-workshop.env")
UNIT_DIR = Path("etc/systemd/system")
# A source checkout's example (`make install` installs it editable); a wheel has none.
EXAMPLE_ENV = Path(__file__).resolve().parents[2] / ".env.example"
COMMAND_TIMEOUT = 60.0


class InstallError(Exception):
    """Said as one line on stderr with what to do; the command exits 1."""


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("systemd", help="install systemd units for a native deployment")
    actions = p.add_subparsers(dest="systemd_action", required=True, metavar="ACTION")
    install = actions.add_parser("install", help="write the units, user, data folder, env file")
    show = actions.add_parser("print", help="print one rendered unit")
    show.add_argument("unit", choices=sorted(UNITS), help="which unit")
    for cmd in (install, show):
        cmd.add_argument("--data", type=Path, metavar="DIR", help=f"default {DEFAULT_DATA}")
        cmd.add_argument("--env-file", type=Path, metavar="PATH", default=DEFAULT_ENV_FILE)
        cmd.add_argument("--user", default=USER, help=f"the services' user (default {USER})")
    install.add_argument(
        "--units",
        default="redis,queue-manager",
        help=f"comma-separated, of {', '.join(UNITS)} (default: redis,queue-manager)",
    )
    install.add_argument("--root", type=Path, metavar="DIR", help="write everything under DIR")
    install.add_argument("--dry-run", action="store_true", help="say what, write nothing")


def run_systemd_command(settings: Settings, args: argparse.Namespace) -> int:
    """`settings` is not used: the units are for the deployment's data folder, not ./data."""
    try:
        layout = _layout(args)
        if args.systemd_action == "print":
            print(render_unit(args.unit, layout), end="")
            return 0
        _install(layout, _units(args.units), args.root, args.dry_run)
    except (UnitOptionError, InstallError) as exc:
        print(f"comfy-workshop systemd: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _layout(args: argparse.Namespace) -> Layout:
    data = (args.data or DEFAULT_DATA).absolute()
    return Layout(
        program=str(_program()),
        redis_server=shutil.which("redis-server") or "/usr/bin/redis-server",
        data=os.path.normpath(data),
        env_file=str(args.env_file.absolute()),
        user=args.user,
    )


def _program() -> Path:
    """The `comfy-workshop` installed beside this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "comfy-workshop"
    if beside.is_file():
        return beside.absolute()
    found = shutil.which("comfy-workshop")
    if found is None:
        raise InstallError("no installed comfy-workshop command found: pip install it first")
    return Path(found).absolute()


def _units(text: str) -> list[str]:
    chosen = [u.strip() for u in text.split(",") if u.strip()]
    unknown = [u for u in chosen if u not in UNITS]
    if unknown or not chosen:
        raise InstallError(f"--units takes {', '.join(UNITS)} (comma-separated), not {text!r}")
    return [u for u in UNITS if u in chosen]  # in start order


def _install(layout: Layout, units: list[str], root: Path | None, dry_run: bool) -> None:
    if "redis" in units and not Path(layout.redis_server).is_file():
        raise InstallError("redis-server is not installed (Debian: apt-get install redis-server)")
    base = (root or Path("/")).absolute()
    real = root is None and not dry_run
    say = "would write" if dry_run else "wrote"
    for unit in units:
        target = base / UNIT_DIR / UNITS[unit]
        if not dry_run:
            _write(target, render_unit(unit, layout), 0o644)
        print(f"{say} {target}")
    _ensure_user(layout.user, real)
    _ensure_data(base / layout.data.lstrip("/"), layout.user, real, dry_run)
    _ensure_env_file(base / layout.env_file.lstrip("/"), layout, units, dry_run)
    print(next_steps(units, layout.env_file))


def _write(path: Path, text: str, mode: int) -> None:
    """Whole or not at all: a temporary name, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.part")
    part.write_text(text)
    part.chmod(mode)
    part.replace(path)


def _ensure_user(user: str, real: bool) -> None:
    if _exists(user):
        return
    if not real or os.geteuid() != 0:
        print(f"note: user {user} not created (needs root, without --root/--dry-run): "
              f"groupadd --system --gid {GID} {user} && useradd --system --uid {UID} "
              f"--gid {GID} --no-create-home --shell /usr/sbin/nologin {user}")  # fmt: skip
        return
    nologin = shutil.which("nologin") or "/usr/sbin/nologin"
    _run(["groupadd", "--system", "--gid", str(GID), user])
    _run(["useradd", "--system", "--uid", str(UID), "--gid", str(GID), "--no-create-home",
          "--home-dir", "/nonexistent", "--shell", nologin, user])  # fmt: skip
    print(f"created user and group {user} ({UID}:{GID})")


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{command[0]} failed: {exc}") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise InstallError(f"{' '.join(command)}: {said[-1] if said else done.returncode}")


def _ensure_data(folder: Path, user: str, real: bool, dry_run: bool) -> None:
    if dry_run:
        print(f"would create {folder} (and redis/ in it), owned by {user}")
        return
    for path in (folder, folder / "redis"):
        path.mkdir(mode=0o750, parents=True, exist_ok=True)
        if real and os.geteuid() == 0 and _exists(user):
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
    print(f"data folder {folder}" + (f" (owned by {user})" if real else ""))


def _ensure_env_file(path: Path, layout: Layout, units: list[str], dry_run: bool) -> None:
    if path.exists():
        print(f"kept {path}")
        for line in env_conflicts(path.read_text(), layout):
            print(f"warning: {path} sets {line}")
        return
    if dry_run:
        print(f"would write {path} (a random CW_SECRET_KEY)")
        return
    example = EXAMPLE_ENV.read_text() if EXAMPLE_ENV.is_file() else ""
    text = render_env_file(example, layout, secrets.token_urlsafe(32), units)
    _write(path, text, 0o600)  # systemd reads it as root; it holds the session secret
    print(f"wrote {path} (a random CW_SECRET_KEY)")
