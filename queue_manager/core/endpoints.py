"""Push endpoints as the operator configures them (pure): a GPU the queue manager calls itself
(a ComfyUI URL, serverless replicas behind a load balancer, a RunPod-style job API, our agent
in a serverless image), with how many jobs it keeps there, how inputs reach it and outputs come
back, and how long a cold start or a job may take.

`prefetch` (kind `comfyui` only): how many jobs wait in the endpoint's own queue behind the one
it runs, so that one ComfyUI starts the next the instant the last ends (`push.slot`). For one
ComfyUI machine; behind a balancer of replicas a prefetched job would run at once on another
replica, beyond the slot count, so it stays 0 there.

One spelling everywhere: the `endpoint add` flags, and `up --endpoint URL,slots=2,outputs=DIR`
(the same option names after the URL). Header values are secrets (API keys): kept, never shown
back.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from queue_manager.core.errors import EndpointInvalid
from queue_manager.core.ids import WorkerId, is_name


class EndpointKind(enum.StrEnum):
    COMFYUI = "comfyui"  # POST /prompt, follow /ws, poll /history (replicas behind an LB too)
    RUNPOD = "runpod"  # RunPod worker-comfyui's /run, /status/{id}, /cancel/{id}
    AGENT = "agent"  # our agent inside the image, pushed to, reporting over the worker API


MAX_SLOTS = 64
MAX_PREFETCH = 1
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")  # an HTTP token
_HIDDEN = "(hidden)"


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    url: str
    kind: EndpointKind = EndpointKind.COMFYUI
    slots: int = 1
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    outputs: str = "view"  # "view": fetched through /view; else a folder all replicas write to
    inputs: str = "upload"  # "upload": through /upload/image; else a folder all replicas read
    cold_start_timeout: float = 300.0
    job_timeout: float = 1800.0
    prefetch: int = 0

    def shown(self) -> dict[str, object]:
        """What the operator and the dashboard see: header names, never their values."""
        return {
            "name": self.name,
            "url": self.url,
            "kind": self.kind.value,
            "slots": self.slots,
            "headers": {name: _HIDDEN for name, _ in self.headers},
            "outputs": self.outputs,
            "inputs": self.inputs,
            "cold_start_timeout": self.cold_start_timeout,
            "job_timeout": self.job_timeout,
            "prefetch": self.prefetch,
        }


def slot_worker(name: str, slot: int) -> WorkerId:
    """The worker an endpoint's slot is in the queue: `NAME.K` (a worker token's name cannot
    hold a dot, so no pull worker can ever be mistaken for it)."""
    return WorkerId(f"{name}.{slot}")


def endpoint_of(worker_id: str) -> str | None:
    """The endpoint a slot worker belongs to (None for a pull worker)."""
    name, dot, slot = worker_id.partition(".")
    return name if dot and slot.isdigit() else None


def endpoint(
    name: str,
    url: str,
    *,
    kind: str = "comfyui",
    slots: int = 1,
    headers: tuple[str, ...] = (),
    outputs: str = "view",
    inputs: str = "upload",
    cold_start_timeout: float = 300.0,
    job_timeout: float = 1800.0,
    prefetch: int = 0,
) -> EndpointConfig:
    """A checked configuration, or EndpointInvalid saying what to correct."""
    if not is_name(name):
        raise EndpointInvalid("endpoint names are lowercase letters, digits, '-' and '_'")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointInvalid(f"{url!r} is not an http(s) URL (e.g. https://gpu.example/)")
    if parts.username or parts.password:
        raise EndpointInvalid("put credentials in a --header, not in the URL (it is shown)")
    try:
        chosen = EndpointKind(kind)
    except ValueError:
        raise EndpointInvalid(
            f"kind is one of {', '.join(k.value for k in EndpointKind)}"
        ) from None
    if not 1 <= slots <= MAX_SLOTS:
        raise EndpointInvalid(f"slots is 1..{MAX_SLOTS} (how many jobs it runs at once)")
    if not 0 <= prefetch <= MAX_PREFETCH:
        raise EndpointInvalid(
            f"prefetch is 0..{MAX_PREFETCH} (jobs kept waiting in the endpoint's own queue)"
        )
    if prefetch and chosen is not EndpointKind.COMFYUI:
        raise EndpointInvalid("prefetch is for kind comfyui (a ComfyUI's own queue) only")
    if cold_start_timeout <= 0 or job_timeout <= 0:
        raise EndpointInvalid("timeouts are positive numbers of seconds")
    for where, value, default in (("outputs", outputs, "view"), ("inputs", inputs, "upload")):
        if value != default and not value.startswith("/"):
            raise EndpointInvalid(f"{where} is {default!r} or an absolute folder (a shared mount)")
    return EndpointConfig(
        name=name,
        url=url.rstrip("/"),
        kind=chosen,
        slots=slots,
        headers=tuple(parse_header(h) for h in headers),
        outputs=outputs,
        inputs=inputs,
        cold_start_timeout=float(cold_start_timeout),
        job_timeout=float(job_timeout),
        prefetch=prefetch,
    )


def parse_header(text: str) -> tuple[str, str]:
    """`'Authorization: Bearer xyz'` -> ("Authorization", "Bearer xyz")."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _HEADER_NAME.match(name) or not value or any(c in value for c in "\r\n"):
        raise EndpointInvalid(
            f"a header is 'Name: value' on one line, not {text.split(':')[0]!r}..."
        )
    return name, value


_SPEC_OPTIONS = {
    "name": str,
    "kind": str,
    "slots": int,
    "outputs": str,
    "inputs": str,
    "cold-start-timeout": float,
    "job-timeout": float,
    "prefetch": int,
}


def parse_endpoint_spec(spec: str, default_name: str) -> EndpointConfig:
    """`up --endpoint URL[,option=value...]`, the options spelled as `endpoint add`'s flags
    (`slots=2`, `outputs=/mnt/out`, `cold-start-timeout=240`, `header=Name: value`)."""
    url, *options = (part.strip() for part in spec.split(","))
    values: dict[str, object] = {"name": default_name}
    headers: list[str] = []
    for option in options:
        key, sep, raw = option.partition("=")
        key = key.strip()
        if key == "header" and sep:
            headers.append(raw)
            continue
        if not sep or key not in _SPEC_OPTIONS:
            known = ", ".join([*_SPEC_OPTIONS, "header"])
            raise EndpointInvalid(f"unknown endpoint option {option!r} (known: {known})")
        try:
            values[key] = _SPEC_OPTIONS[key](raw.strip())
        except ValueError:
            raise EndpointInvalid(f"{key} takes a number, not {raw!r}") from None
    name = str(values.pop("name"))
    kwargs = {k.replace("-", "_"): v for k, v in values.items()}
    return endpoint(name, url, headers=tuple(headers), **kwargs)  # type: ignore[arg-type]
