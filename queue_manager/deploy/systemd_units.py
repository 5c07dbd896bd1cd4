"""systemd units for a native deployment, rendered from a few paths. Pure: no file, no process;
`comfy-workshop systemd install` writes what this returns, and deploy/systemd/ holds its
rendering of `EXAMPLE` (a test keeps them equal).

The layout is the docker compose deployment's, so an operator can switch between them and keep
everything: one data folder (DATA, compose's /data) owned by uid:gid 10001:10001
(`comfy-workshop`), Redis's AOF and snapshot in DATA/redis, the participants' folders beside it.

Units (each `Restart=on-failure`, the same EnvironmentFile as `.env`, hardened as far as the
process tolerates: the queue manager's command and MemoryDenyWriteExecute are checked by the
tests, which run the rendered command line under the kernel's W^X rule):

* comfy-workshop-redis.service: redis-server on 127.0.0.1 only, AOF on (fsync every second);
* comfy-workshop.service: the queue manager (`comfy-workshop serve`) behind nginx;
* comfy-workshop-worker.service: a GPU worker agent (often on the GPU host alone); SIGTERM lets
  it finish its job, so it may take up to CW_WORKER_JOB_TIMEOUT_SECONDS to stop;
* comfy-workshop-simulator.service: a ComfyUI simulator, for rehearsals without a GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The image's user (Dockerfile): files written by either deployment stay readable by the other.
UID = GID = 10001
USER = "comfy-workshop"
REDIS_PORT = 6379
SIMULATOR_PORT = 8189
# The agent's longest job (CW_WORKER_JOB_TIMEOUT_SECONDS) and its outcome's retries
# (CW_WORKER_MANAGER_RETRY_SECONDS), at their defaults: what draining may take.
WORKER_STOP_SECONDS = 3600 + 120 + 60

UNITS: dict[str, str] = {
    "redis": "comfy-workshop-redis.service",
    "queue-manager": "comfy-workshop.service",
    "worker": "comfy-workshop-worker.service",
    "simulator": "comfy-workshop-simulator.service",
}
# Paths go into unit files and an env file unquoted: no spaces, quotes, `%` (a systemd
# specifier), `$`, `\` or control characters.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@:-]*$")
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class UnitOptionError(ValueError):
    """A path or name that cannot go into a unit file; names the option."""


@dataclass(frozen=True)
class Layout:
    program: str  # the installed `comfy-workshop` (absolute)
    redis_server: str  # absolute
    data: str  # the data folder (absolute)
    env_file: str = "/etc/comfy-workshop/comfy-workshop.env"
    user: str = USER
    port: int = 8188  # the queue manager's (CW_PORT)

    def __post_init__(self) -> None:
        for option in ("program", "redis_server", "data", "env_file"):
            value = getattr(self, option)
            if not _SAFE_PATH.match(value) or "/../" in value + "/":
                raise UnitOptionError(f"{option}: {value!r} is not an absolute plain path")
        if not _SAFE_NAME.match(self.user):
            raise UnitOptionError(f"user: {self.user!r} is not a system user name")

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{REDIS_PORT}/0"

    def environment(self) -> dict[str, str]:
        """What the units set (the env file written by the installer says the same; an env file
        of one's own may change them: systemd lets EnvironmentFile= win)."""
        return {
            "CW_DATA_DIR": self.data,
            "CW_REDIS_URL": self.redis_url,
            "CW_HOST": "127.0.0.1",
            "CW_WORKER_WORK_DIR": f"{self.data}/worker",
        }


EXAMPLE = Layout(
    program="/opt/comfy-workshop/venv/bin/comfy-workshop",
    redis_server="/usr/bin/redis-server",
    data="/srv/comfy-workshop/data",
)


def render_unit(unit: str, layout: Layout) -> str:
    """The unit file of `unit` (a key of UNITS)."""
    body = _BODIES[unit](layout)
    return "\n".join([*body, *_hardening(unit, layout), "", "[Install]",
                      "WantedBy=multi-user.target", ""])  # fmt: skip


def _service(layout: Layout, description: str, after: str = "", requires: str = "") -> list[str]:
    return [
        "[Unit]",
        f"Description={description}",
        f"After=network-online.target {after}".rstrip(),
        "Wants=network-online.target",
        *([f"Requires={requires}"] if requires else []),
        "",
        "[Service]",
        "Type=exec",
        f"User={layout.user}",
        f"Group={layout.user}",
        "UMask=0027",
        f"EnvironmentFile={layout.env_file}",
        *(f"Environment={k}={v}" for k, v in layout.environment().items()),
        "Restart=on-failure",
        "RestartSec=2",
        "KillSignal=SIGTERM",
    ]


def _redis(layout: Layout) -> list[str]:
    args = [
        "--bind 127.0.0.1",
        f"--port {REDIS_PORT}",
        "--protected-mode yes",
        f"--dir {layout.data}/redis",
        "--appendonly yes",
        "--appendfsync everysec",
        "--supervised systemd",
        "--daemonize no",
    ]
    unit = _service(layout, "Comfy Workshop Redis (all state; AOF in DATA/redis)")
    unit.remove("Type=exec")
    return [
        *unit,
        "Type=notify",
        f"ExecStart={layout.redis_server} {' '.join(args)}",
        # Stopping writes the AOF's last second out; a big dataset takes a while.
        "TimeoutStopSec=90",
        "LimitNOFILE=65535",
    ]


def _queue_manager(layout: Layout) -> list[str]:
    redis = UNITS["redis"]
    return [
        *_service(layout, "Comfy Workshop queue manager", after=redis, requires=redis),
        f"ExecStart={layout.program} serve",
        "TimeoutStopSec=30",
    ]


def _worker(layout: Layout) -> list[str]:
    # After the others only when they are on this host (ordering a missing unit is a no-op).
    after = f"{UNITS['queue-manager']} {UNITS['simulator']}"
    return [
        *_service(layout, "Comfy Workshop GPU worker agent", after=after),
        f"ExecStart={layout.program} worker",
        # SIGTERM: the agent finishes its job and claims no more. A second SIGTERM
        # (systemctl kill comfy-workshop-worker) stops it now; its job goes back to the queue.
        f"TimeoutStopSec={WORKER_STOP_SECONDS}",
    ]


def _simulator(layout: Layout) -> list[str]:
    data = f"{layout.data}/simulator"
    return [
        *_service(layout, "Comfy Workshop ComfyUI simulator (rehearsals without a GPU)"),
        f"ExecStart={layout.program} simulator --host 127.0.0.1 --port {SIMULATOR_PORT} "
        f"--data {data}",
        "TimeoutStopSec=10",
    ]


_BODIES = {
    "redis": _redis,
    "queue-manager": _queue_manager,
    "worker": _worker,
    "simulator": _simulator,
}


def _hardening(unit: str, layout: Layout) -> list[str]:
    """What every unit tolerates. PrivateDevices holds for the worker agent too: it only talks
    HTTP to its ComfyUI, which has the GPU in a unit of its own (never give a ComfyUI unit
    these settings: it needs /dev/nvidia*)."""
    home = "read-only" if _under_home(layout) else "yes"
    return [
        "",
        "# Hardening (systemd-analyze security comfy-workshop...)",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={layout.data}",
        f"ProtectHome={home}",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        # CPython and its extensions never need memory both writable and executable (checked
        # under the kernel's W^X rule by the tests); Debian's own redis unit sets it too.
        "MemoryDenyWriteExecute=yes",
        "RemoveIPC=yes",
        "CapabilityBoundingSet=",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
    ]


def _under_home(layout: Layout) -> bool:
    """A program or data folder in a home folder: ProtectHome=yes would hide it."""
    homes = ("/home/", "/root/", "/run/user/")
    return any(p.startswith(homes) for p in (layout.program, layout.redis_server, layout.data))


# -- the env file ------------------------------------------------------------------------------


def render_env_file(example: str, layout: Layout, secret: str, units: Iterable[str]) -> str:
    """`.env.example`'s variables with the values of this host: the units' paths, a session
    secret, local mode off, and the worker aimed at this host's queue manager and simulator
    when they are installed here too."""
    chosen = set(units)
    values = {**layout.environment(), "CW_LOCAL_MODE": "false", "CW_SECRET_KEY": secret,
              "CW_PORT": str(layout.port)}  # fmt: skip
    if "queue-manager" in chosen:
        values["CW_WORKER_MANAGER_URL"] = f"http://127.0.0.1:{layout.port}/"
    if "simulator" in chosen:
        values["CW_WORKER_COMFYUI_URL"] = f"http://127.0.0.1:{SIMULATOR_PORT}"
    header = (
        "# Comfy Workshop on this host (systemd units); written by `comfy-workshop systemd "
        "install`,\n# never overwritten. The units read it: keep CW_DATA_DIR and CW_REDIS_URL "
        "as they are.\n"
    )
    return header + "\n".join(_with_values(example.splitlines(), values)) + "\n"


def _with_values(lines: list[str], values: Mapping[str, str]) -> Iterable[str]:
    """Each line, with our value where it names one; ours it lacks at the end."""
    seen = set()
    for line in lines:
        key, eq, _ = line.partition("=")
        if eq and key in values:
            seen.add(key)
            yield f"{key}={values[key]}"
        else:
            yield line
    yield from (f"{k}={v}" for k, v in values.items() if k not in seen)


def env_conflicts(env_text: str, layout: Layout) -> list[str]:
    """`NAME=value` lines of an existing env file that override what the units set."""
    wanted = layout.environment()
    found = []
    for line in env_text.splitlines():
        key, eq, value = line.strip().partition("=")
        value = value.strip().strip("\"'")
        if eq and key in wanted and value != wanted[key]:
            found.append(f"{key}={value} (the units expect {wanted[key]})")
    return found


def next_steps(units: Iterable[str], env_file: str) -> str:
    """The commands to run after installing `units`."""
    names = " ".join(UNITS[u] for u in units)
    lines = [
        f"Check {env_file} (a worker needs CW_WORKER_TOKEN: comfy-workshop worker-token "
        "create NAME), then:",
        f"  systemctl daemon-reload && systemctl enable --now {names}",
    ]
    if "redis" in units:
        lines.append(
            "Debian's redis-server package runs its own Redis on port 6379: "
            "systemctl disable --now redis-server"
        )
    return "\n".join(lines)
