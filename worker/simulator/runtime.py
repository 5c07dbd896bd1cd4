"""The contract between the simulator's executor and its node implementations.

A node implementation is an async function `run(ctx, **inputs) -> NodeResult`, registered by
class_type in `worker.simulator.nodes.NODES`. Inputs arrive already resolved: literal values
as sent in the prompt (converted to the declared type), linked inputs as the upstream node's
output value. What travels on links:

    IMAGE          Images: a batch (list) of RGBA-or-RGB PIL images, all the same size
    LATENT         Latent: width, height, batch size and a `fingerprint` that sampling changes
    MODEL/CLIP/VAE ModelRef: the file name that was loaded (what makes the picture differ)
    CONDITIONING   Conditioning: the prompt text(s)
    INT/FLOAT/STRING/BOOLEAN   plain Python values
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image as PILImage

Images = list[PILImage.Image]


@dataclass(frozen=True)
class ModelRef:
    kind: str  # "model", "clip", "vae"
    name: str


@dataclass(frozen=True)
class Conditioning:
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Latent:
    width: int
    height: int
    batch: int
    fingerprint: str = ""  # empty: pure noise; a sampler sets it from seed, model and prompts


@dataclass(frozen=True)
class OutputFile:
    """One file a node wrote, as ComfyUI reports it: `{filename, subfolder, type}`."""

    filename: str
    subfolder: str
    type: str  # "output" | "temp" | "input"

    def as_dict(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


@dataclass
class NodeResult:
    outputs: tuple[Any, ...] = ()
    # UI output of an output node, exactly what goes into `executed.output` and the history's
    # `outputs[node_id]`: e.g. {"images": [OutputFile.as_dict(), ...]}, {"text": ["40"]},
    # {"images": [...], "animated": [True]}.
    ui: dict[str, list[Any]] | None = None


@dataclass(frozen=True)
class SimulatorConfig:
    step_delay: float = 0.0  # seconds per sampler step (and per "slow" node)
    fail_class_types: frozenset[str] = frozenset()  # these node types raise at run time
    large_output_bytes: int = 0  # > 0: video/animated saves write a file of about this size
    preview_size: int = 64  # longest side of latent previews
    # ComfyUI's --front-end-root: serve this folder's index.html at `/` and its files below it
    # (None: no page, every path that is not a route is 404).
    front_end_root: Path | None = None
    # ComfyUI's --input-directory / --output-directory: folders outside `base` (a network
    # mount that several serverless replicas share); None: `base/input`, `base/output`.
    input_directory: Path | None = None
    output_directory: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Interrupted(Exception):
    """Raised by `ctx.check_interrupted()`: the executor turns it into execution_interrupted."""


class UnsupportedNode(RuntimeError):
    """A node type the simulator lists (object_info) but cannot execute."""


class NodeContext(Protocol):
    """What a running node can see and do. Provided by the executor."""

    prompt_id: str
    node_id: str
    class_type: str
    config: SimulatorConfig
    output_dir: Path
    temp_dir: Path
    input_dir: Path

    async def progress(self, value: int, maximum: int) -> None:
        """Report progress (sends `progress` + `progress_state`); also an interrupt check."""

    async def preview(self, image: PILImage.Image) -> None:
        """Send a preview image (binary frame type 1 or 4, as the client negotiated)."""

    async def text(self, text: str) -> None:
        """Send progress text (binary frame type 3, broadcast)."""

    def check_interrupted(self) -> None:
        """Raise Interrupted if this prompt was interrupted."""

    def next_filename(self, folder: Path, prefix: str, extension: str) -> tuple[str, str]:
        """ComfyUI's save naming for `filename_prefix` (may contain '/'): returns
        (subfolder, filename) such as ("capture", "ref_00001_.png"), the counter one above the
        highest existing file for that prefix in `folder`."""
