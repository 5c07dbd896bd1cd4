"""What each stand-in participant sends: the rehearsal's workflow as an API-format prompt, with
a fresh seed for every job (a real GPU's ComfyUI would serve a repeated prompt from its cache,
and the rehearsal would measure nothing).

The workflow is a file the instructor gives (API format, or the UI format "Export" saves: turned
into a prompt here as the page's `graphToPrompt` does, for the plain graphs a workshop uses),
the instructor's first published workflow, or a built-in text-to-image graph that every ComfyUI
runs (checkpoint loader, sampler, save) with the first checkpoint the GPUs offer. Pure.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from queue_manager.core.errors import WorkflowInvalid
from queue_manager.core.workflows import SEED_INPUTS, WorkflowFormat, parse_workflow

MAX_WORKFLOW_BYTES = 20 * 1024 * 1024
_MAX_SEED = 2**50  # within the frontend's INT widgets and JavaScript's safe integers
# Node types the page itself draws and never sends (core.workflow_needs.FRONTEND_NODE_TYPES).
_PAGE_ONLY = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
_MUTED, _BYPASSED = 2, 4
_EXPORT_API = "open it in ComfyUI and save it with Workflow > Export (API), then give that file"

Prompt = dict[str, Any]


class WorkflowProblem(ValueError):
    """A workflow the rehearsal cannot send; the message says what to do."""


@dataclass(frozen=True)
class RehearsalWorkflow:
    """The prompt to send (fresh seeds per job: `fresh_seeds`), and the UI-format graph when
    there is one (the browser participants load it; the page embeds it in the job)."""

    name: str
    prompt: Prompt
    graph: dict[str, Any] | None = None


def read_workflow(name: str, raw: bytes, catalogue: Mapping[str, Any]) -> RehearsalWorkflow:
    """A workflow file (either format) as the rehearsal sends it."""
    try:
        kind, data = parse_workflow(raw, MAX_WORKFLOW_BYTES)
    except WorkflowInvalid as exc:
        raise WorkflowProblem(f"{name}: {exc}") from exc
    if kind is WorkflowFormat.API:
        return RehearsalWorkflow(name, data)
    return RehearsalWorkflow(name, graph_to_prompt(data, catalogue, name), data)


def default_workflow(catalogue: Mapping[str, Any], steps: int = 20) -> RehearsalWorkflow:
    """Text to image with the first checkpoint the GPUs offer (512 x 512, `steps` steps)."""
    checkpoints = combo_options(catalogue, "CheckpointLoaderSimple", "ckpt_name")
    if not checkpoints:
        raise WorkflowProblem(
            "the workshop's GPUs list no checkpoint for the built-in workflow: give one with "
            "--workflow FILE (API or UI format), or publish one (comfy-workshop workflows publish)"
        )
    prompt: Prompt = {
        "4": _node("CheckpointLoaderSimple", ckpt_name=checkpoints[0]),
        "5": _node("EmptyLatentImage", width=512, height=512, batch_size=1),
        "6": _node("CLIPTextEncode", text="a lighthouse at dusk, rehearsal", clip=["4", 1]),
        "7": _node("CLIPTextEncode", text="blurry", clip=["4", 1]),
        "3": _node(
            "KSampler",
            seed=0,
            steps=steps,
            cfg=7.0,
            sampler_name="euler",
            scheduler="normal",
            denoise=1.0,
            model=["4", 0],
            positive=["6", 0],
            negative=["7", 0],
            latent_image=["5", 0],
        ),
        "8": _node("VAEDecode", samples=["3", 0], vae=["4", 2]),
        "9": _node("SaveImage", filename_prefix="rehearsal", images=["8", 0]),
    }
    return RehearsalWorkflow("built-in text to image", prompt)


def _node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


def fresh_seeds(prompt: Prompt, rng: random.Random) -> Prompt:
    """A copy of `prompt` with a new random value in every seed input (`seed`, `noise_seed`)."""
    fresh = copy.deepcopy(prompt)
    for node in fresh.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        for key in SEED_INPUTS:
            if isinstance(inputs, dict) and _is_int(inputs.get(key)):
                inputs[key] = rng.randrange(_MAX_SEED)
    return fresh


def combo_options(catalogue: Mapping[str, Any], node_type: str, input_name: str) -> list[str]:
    """The choices of a combo input in `object_info` (`[[a, b], {...}]` or
    `["COMBO", {"options": [a, b]}]`)."""
    spec = _input_specs(catalogue.get(node_type)).get(input_name)
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], list):
        return [str(o) for o in spec[0]]
    options = spec[1].get("options") if len(spec) > 1 and isinstance(spec[1], dict) else None
    return [str(o) for o in options] if isinstance(options, list) else []


def graph_to_prompt(graph: Mapping[str, Any], catalogue: Mapping[str, Any], name: str) -> Prompt:
    """A UI-format graph as the API prompt the page would send: every node that runs, its
    widget values by input name (in `object_info`'s input order; a seed's "control after
    generate" value skipped), links followed through reroutes; a value from a primitive node
    is the widget's own. Subgraphs, group nodes and bypassed nodes are refused: their export
    in API format says exactly what runs."""
    _refuse_nesting(graph, name)
    nodes = {str(n.get("id")): n for n in graph.get("nodes", []) if isinstance(n, dict)}
    links = _links(graph.get("links"))
    prompt: Prompt = {}
    for node_id, node in nodes.items():
        kind = str(node.get("type"))
        if kind in _PAGE_ONLY or node.get("mode") == _MUTED:
            continue
        if node.get("mode") == _BYPASSED:
            raise WorkflowProblem(f"{name}: node {node_id} ({kind}) is bypassed; {_EXPORT_API}")
        info = catalogue.get(kind)
        if not isinstance(info, Mapping):
            raise WorkflowProblem(f"{name}: the workshop's GPUs have no node type {kind}")
        prompt[node_id] = {"class_type": kind, "inputs": _inputs(node, info, nodes, links),
                           "_meta": {"title": str(node.get("title") or kind)}}  # fmt: skip
    for node in prompt.values():  # a link into a node that does not run is no input
        node["inputs"] = {
            k: v for k, v in node["inputs"].items() if not _is_link(v) or v[0] in prompt
        }
    if not prompt:
        raise WorkflowProblem(f"{name}: the workflow has no node that runs")
    return prompt


def _refuse_nesting(graph: Mapping[str, Any], name: str) -> None:
    definitions = graph.get("definitions")
    subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    extra = graph.get("extra")
    groups = extra.get("groupNodes") if isinstance(extra, dict) else None
    if subgraphs or groups:
        raise WorkflowProblem(f"{name}: the workflow has subgraphs or group nodes; {_EXPORT_API}")


def _links(raw: object) -> dict[int, tuple[str, int]]:
    """link id -> (origin node id, origin slot); old (lists) and new (objects) shapes."""
    found: dict[int, tuple[str, int]] = {}
    for link in raw if isinstance(raw, list) else []:
        if isinstance(link, list) and len(link) >= 3:
            found[int(link[0])] = (str(link[1]), int(link[2]))
        elif isinstance(link, dict) and "id" in link:
            found[int(link["id"])] = (str(link.get("origin_id")), int(link.get("origin_slot", 0)))
    return found


def _inputs(
    node: Mapping[str, Any],
    info: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    links: Mapping[int, tuple[str, int]],
) -> dict[str, Any]:
    linked = {
        str(i.get("name")): i.get("link")
        for i in node.get("inputs") or []
        if isinstance(i, dict) and i.get("link") is not None
    }
    values = node.get("widgets_values")
    inputs: dict[str, Any] = {}
    position = 0
    for input_name, spec in _ordered_inputs(info):
        value: Any = None
        if _is_widget(spec):
            value = _widget_value(values, position, input_name)
            position += 2 if _has_control(input_name, spec) else 1
        source = _source(linked.get(input_name), nodes, links)
        if source is not None:
            inputs[input_name] = source
        elif value is not None:
            inputs[input_name] = value
    return inputs


def _ordered_inputs(info: Mapping[str, Any]) -> list[tuple[str, Any]]:
    spec = info.get("input")
    order = info.get("input_order")
    found: list[tuple[str, Any]] = []
    for group in ("required", "optional"):
        inputs = spec.get(group) if isinstance(spec, dict) else None
        if not isinstance(inputs, dict):
            continue
        names: Sequence[str] = (order.get(group) if isinstance(order, dict) else None) or list(
            inputs
        )
        found += [(n, inputs[n]) for n in names if n in inputs]
    return found


def _input_specs(info: object) -> dict[str, Any]:
    return dict(_ordered_inputs(info)) if isinstance(info, Mapping) else {}


def _widget_value(values: object, position: int, name: str) -> Any:
    if isinstance(values, dict):
        return values.get(name)
    if isinstance(values, list) and position < len(values):
        return values[position]
    return None


def _source(
    link: object, nodes: Mapping[str, Mapping[str, Any]], links: Mapping[int, tuple[str, int]]
) -> list[Any] | None:
    """`[origin id, slot]` for a link, through reroutes; None when the value is the widget's
    own (a primitive node, a dangling link)."""
    for _ in range(100):  # a reroute chain, never a loop
        if not isinstance(link, int) or link not in links:
            return None
        origin, slot = links[link]
        kind = nodes.get(origin, {}).get("type")
        if kind != "Reroute":
            return None if kind in (None, "PrimitiveNode") else [origin, slot]
        ins = nodes[origin].get("inputs") or [{}]
        link = ins[0].get("link") if isinstance(ins[0], dict) else None
    return None


def _is_widget(spec: object) -> bool:
    if not isinstance(spec, list) or not spec:
        return False
    return isinstance(spec[0], list) or spec[0] in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def _has_control(name: str, spec: list[Any]) -> bool:
    """The page adds a "control after generate" value after a seed (and any input that asks)."""
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return bool(options.get("control_after_generate")) or (spec[0] == "INT" and name in SEED_INPUTS)


def _is_link(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
