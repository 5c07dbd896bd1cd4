"""The instructor's published workflows, as pure rules: which files are workflows, what a
workflow may be called, where participants see it, and the per-participant seed.

A published workflow appears in every participant's Workflows sidebar under `Workshop/`
(`workflows/Workshop/<name>.json` in their user data), read-only for them: a save there keeps
the participant's own copy in their own folder (`workflows/<name>.json`), so a newer version
published later never overwrites what they made of it.

ComfyUI knows two formats: the UI format (what "Export" saves: `nodes`, `links`, the canvas
state) and the API format (what the page sends to `/prompt`: node ids mapping to
`class_type` and `inputs`). Both are accepted; anything else is refused with a message that
says which is which.
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import MalformedBody, WorkflowInvalid

FOLDER_NAME = "Workshop"
# Where participants see published workflows, inside their user-data folder.
WORKSHOP_FOLDER = PurePosixPath("workflows") / FOLDER_NAME
OWN_FOLDER = PurePosixPath("workflows")
MAX_NAME_CHARS = 80
MAX_WORKFLOWS = 100
# A name: letters (any script), digits, spaces and a few marks; no path separators, no
# leading dot or space, nothing a file system or a URL could read as something else.
_NAME = re.compile(r"^[\w][\w .,()+&'!-]*$")
# Inputs that seed a sampler's noise (core nodes: KSampler, KSamplerAdvanced, RandomNoise,
# SamplerCustom); a published workflow may give each participant their own.
SEED_INPUTS = ("seed", "noise_seed")
_MAX_SEED = 2**50  # within the frontend's INT widgets and JavaScript's safe integers


class WorkflowFormat(enum.StrEnum):
    UI = "ui"
    API = "api"


@dataclass(frozen=True)
class PublishedWorkflow:
    name: str
    format: WorkflowFormat
    graph: dict[str, Any]
    position: int = 0
    first: bool = False
    randomize_seed: bool = False
    version: int = 1
    published_at: float = 0.0
    published_by: str = ""

    @property
    def path(self) -> PurePosixPath:
        """Where a participant sees it: `workflows/Workshop/<name>.json`."""
        return WORKSHOP_FOLDER / f"{self.name}.json"


def workflow_name(text: str) -> str:
    """`text` (a file name or a name the instructor typed) as a workflow's name: without a
    `.json` ending, NFC-normalised, or WorkflowInvalid saying what is wrong with it."""
    name = unicodedata.normalize("NFC", text.strip())
    if name.lower().endswith(".json"):
        name = name[: -len(".json")].rstrip()
    if not name:
        raise WorkflowInvalid("a workflow needs a name")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise WorkflowInvalid(
            f"{text!r} is not a workflow name: no '/', '\\' or leading '.' (it names a file "
            "inside the Workshop folder, never a path)"
        )
    if len(name) > MAX_NAME_CHARS:
        raise WorkflowInvalid(f"a workflow name is at most {MAX_NAME_CHARS} characters")
    if not _NAME.match(name) or any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise WorkflowInvalid(
            f"{name!r} is not a workflow name: use letters, digits, spaces and . , ( ) + & ' ! -"
        )
    return name


def name_of_file(filename: str) -> str:
    """A workflow's name from an uploaded file's name (its last path part only)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return workflow_name(base)


def parse_workflow(raw: bytes, max_bytes: int) -> tuple[WorkflowFormat, dict[str, Any]]:
    """The workflow in `raw`, and its format; WorkflowInvalid for anything else."""
    if len(raw) > max_bytes:
        raise WorkflowInvalid(f"the workflow is larger than {max_bytes // 1024} KiB")
    try:
        data = parse_json(raw, strict=True)
    except MalformedBody as exc:
        raise WorkflowInvalid(
            f"not a ComfyUI workflow: {exc.args[0]}".replace("request body", "file")
        ) from exc
    return workflow_format(data), data  # type: ignore[return-value]


def workflow_format(data: object) -> WorkflowFormat:
    if not isinstance(data, dict) or not data:
        raise WorkflowInvalid(_NEITHER)
    nodes = data.get("nodes")
    if isinstance(nodes, list) and isinstance(data.get("links", []), list):
        if all(isinstance(n, dict) and isinstance(n.get("type"), str) for n in nodes):
            return WorkflowFormat.UI
        raise WorkflowInvalid("a UI-format workflow's nodes must each have a type")
    if all(_is_api_node(v) for v in data.values()):
        return WorkflowFormat.API
    raise WorkflowInvalid(_NEITHER)


_NEITHER = (
    "not a ComfyUI workflow: expected the UI format (what Export saves: 'nodes' and 'links') "
    "or the API format (node ids mapping to 'class_type' and 'inputs')"
)


def _is_api_node(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("class_type"), str)
        and isinstance(value.get("inputs", {}), dict)
    )


def participant_seed(user: str, name: str, version: int) -> int:
    """A seed of the participant's own, stable for one version of one workflow."""
    digest = hashlib.sha256(f"{user}\0{name}\0{version}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _MAX_SEED


def for_participant(
    workflow: PublishedWorkflow, user: str, catalogue: Mapping[str, Any]
) -> dict[str, Any]:
    """The graph as `user` gets it: with their own seed where the workflow asks for it."""
    if not workflow.randomize_seed:
        return workflow.graph
    seed = participant_seed(user, workflow.name, workflow.version)
    graph = copy.deepcopy(workflow.graph)
    if workflow.format is WorkflowFormat.API:
        for node in graph.values():
            inputs = node.get("inputs", {})
            for key in SEED_INPUTS:
                if _is_int(inputs.get(key)):
                    inputs[key] = seed
        return graph
    for node in _ui_nodes(graph):
        for index in seed_widget_indexes(node.get("type", ""), catalogue):
            values = node.get("widgets_values")
            if isinstance(values, list) and index < len(values) and _is_int(values[index]):
                values[index] = seed
    return graph


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ui_nodes(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a UI-format graph, those inside subgraph definitions too."""
    found = [n for n in graph.get("nodes", []) if isinstance(n, dict)]
    definitions = graph.get("definitions")
    subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    for sub in subgraphs if isinstance(subgraphs, list) else []:
        if isinstance(sub, dict):
            found += [n for n in sub.get("nodes", []) if isinstance(n, dict)]
    return found


def seed_widget_indexes(node_type: str, catalogue: Mapping[str, Any]) -> list[int]:
    """Where a node's seed sits in its `widgets_values`, from the node's definition in the
    room's catalogue: widgets in input order (required, then optional), and an INT input with
    `control_after_generate` carrying one more value right after it (the frontend's "fixed /
    randomize" combo)."""
    info = catalogue.get(node_type)
    if not isinstance(info, dict):
        return []
    spec = info.get("input")
    if not isinstance(spec, dict):
        return []
    given = info.get("input_order")
    order: dict[str, Any] = given if isinstance(given, dict) else {}
    indexes: list[int] = []
    position = 0
    for group in ("required", "optional"):
        inputs = spec.get(group)
        if not isinstance(inputs, dict):
            continue
        names: Sequence[str] = order.get(group) or list(inputs)
        for input_name in names:
            kind = inputs.get(input_name)
            if not _is_widget(kind):
                continue
            if input_name in SEED_INPUTS:
                indexes.append(position)
            position += 1
            if _has_control(kind):
                position += 1
    return indexes


def _is_widget(spec: object) -> bool:
    if not isinstance(spec, (list, tuple)) or not spec:
        return False
    kind = spec[0]
    if isinstance(kind, list):
        return True  # a combo
    return kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def _has_control(spec: object) -> bool:
    if not isinstance(spec, (list, tuple)) or len(spec) < 2 or not isinstance(spec[1], dict):
        return False
    options = spec[1]
    if options.get("control_after_generate"):
        return True
    return spec[0] == "INT" and spec[1].get("name") in SEED_INPUTS


def encoded(graph: Mapping[str, Any]) -> bytes:
    return json.dumps(graph, separators=(",", ":"), ensure_ascii=False).encode()


def own_copy_path(rel: PurePosixPath) -> PurePosixPath | None:
    """Where a save to a published workflow's path goes: the participant's own folder, same
    file name (`workflows/Workshop/a.json` -> `workflows/a.json`). None when `rel` is not in
    the Workshop folder."""
    if not in_workshop_folder(rel) or rel == WORKSHOP_FOLDER:
        return None
    return OWN_FOLDER / rel.name


def in_workshop_folder(rel: PurePosixPath) -> bool:
    """Does `rel` name the Workshop folder or anything in it? Compared case-insensitively, as
    a participant's file system view would (`workflows/workshop/x.json` is the same place)."""
    parts = tuple(p.casefold() for p in rel.parts)
    folder = tuple(p.casefold() for p in WORKSHOP_FOLDER.parts)
    return parts[: len(folder)] == folder


def published_name(rel: PurePosixPath) -> str | None:
    """The workflow a participant's path names (`workflows/Workshop/a.json` -> `a`), if any."""
    if not in_workshop_folder(rel) or len(rel.parts) != len(WORKSHOP_FOLDER.parts) + 1:
        return None
    if not rel.name.lower().endswith(".json"):
        return None
    return rel.name[: -len(".json")]
