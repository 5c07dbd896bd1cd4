"""What a prompt needs from a GPU (node types, model files) and whether a worker has it.

Pure functions: the store keeps requirement sets and worker capabilities in Redis, and the claim
script does the same subset test there; this module is the reference the tests hold it to, and
the place readable "held" reasons come from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from queue_manager.core.ids import WorkerId
from queue_manager.core.jobs import ApiPrompt

# Model files are referenced by name from combo inputs (ckpt_name, lora_name, vae_name, ...),
# possibly with a subfolder ("SD1.5/model.safetensors"); custom nodes use other input names, so
# the extension is the reliable mark.
NO_WORKERS = "waiting for a GPU worker to connect"  # lua/submit.lua sets the same text

MODEL_EXTENSIONS = (
    ".safetensors",
    ".ckpt",
    ".pt",
    ".pth",
    ".pt2",
    ".bin",
    ".gguf",
    ".sft",
    ".onnx",
)


@dataclass(frozen=True)
class Requirements:
    node_types: frozenset[str]
    models: frozenset[str]

    @property
    def signature(self) -> str:
        """A short stable name for this set of needs; many jobs share one."""
        canon = json.dumps([sorted(self.node_types), sorted(self.models)], separators=(",", ":"))
        return hashlib.sha1(canon.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Capabilities:
    node_types: frozenset[str]
    # None: the worker does not report its models, so models are not checked for it.
    models: frozenset[str] | None = None


def requirements_of(prompt: ApiPrompt) -> Requirements:
    node_types = {node["class_type"] for node in prompt.values()}
    models = {
        value
        for node in prompt.values()
        for value in node["inputs"].values()
        if isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS)
    }
    return Requirements(frozenset(node_types), frozenset(models))


def missing(req: Requirements, cap: Capabilities) -> Requirements:
    models = frozenset() if cap.models is None else req.models - cap.models
    return Requirements(req.node_types - cap.node_types, models)


def can_run(req: Requirements, cap: Capabilities) -> bool:
    gap = missing(req, cap)
    return not gap.node_types and not gap.models


def hold_reason(gaps: Mapping[WorkerId, Requirements]) -> str | None:
    """Why no known worker can run a job, in words for a participant; None if one can.

    `gaps` maps each known worker to what it lacks for the job (see `missing`).
    """
    if not gaps:
        return NO_WORKERS
    if any(not g.node_types and not g.models for g in gaps.values()):
        return None
    # Report what the closest worker lacks: the smallest gap is the most actionable.
    gap = min(gaps.values(), key=lambda g: (len(g.node_types), len(g.models)))
    parts = []
    if gap.node_types:
        parts.append("node types " + ", ".join(sorted(gap.node_types)))
    if gap.models:
        parts.append("models " + ", ".join(sorted(gap.models)))
    return "held: no connected GPU has " + " and ".join(parts)
