"""What a whole workflow file needs from a GPU (node types, model files), in either of
ComfyUI's formats, and what of that a catalogue (`object_info`) does not offer.

`core.requirements` does the same for one API prompt at submission (capability routing); this
module reads the files people hand around: the UI format (what "Export" saves, templates
included) and the API format, before anyone presses Run. Both answer with the same
`Requirements` (here called `Needs`), so one gap reads the same everywhere.

Pure: the caller brings the parsed JSON and the catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from queue_manager.core.jobs import ApiPrompt
from queue_manager.core.requirements import MODEL_EXTENSIONS, Requirements, requirements_of

Needs = Requirements

# Node types the frontend itself registers, never in `object_info`: a workflow that holds them
# needs nothing of a GPU for them. Found in comfyui-frontend-package 1.58.1
# (static/assets/core-*.js: `registerNodeType(`Note`...)`, `MarkdownNote`, `Reroute`,
# `PrimitiveNode`); 1.27.10 registers the same four.
FRONTEND_NODE_TYPES = frozenset({"Note", "MarkdownNote", "Reroute", "PrimitiveNode"})
# Notes hold prose for people: a sentence ending in ".safetensors" there names no input.
_NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
# The frontend's (legacy) group nodes are typed `workflow>Name` (1.58.1: `var U="workflow"`,
# `${U}>${name}`; older frontends `workflow/Name`); their inner nodes sit in
# `extra.groupNodes[Name].nodes`.
_GROUP_NODE_PREFIXES = ("workflow>", "workflow/")
# LiteGraph node modes: 2 = muted ("never"), 4 = bypassed. Such a node does not run, so the
# models it names are not needed; its type still is (the page must draw it).
_NOT_RUN_MODES = (2, 4)
_MAX_DEPTH = 8  # widget values nest (a dict of lists); deeper is not a widget


def needs_of(graph: Mapping[str, Any]) -> Needs:
    """The node types a workflow uses and the model files it names, UI or API format.
    Tolerant: what is not shaped like a node is skipped (the publishing check refuses files
    that are neither format; this only reads)."""
    if not isinstance(graph, Mapping):
        return Needs(frozenset(), frozenset())
    if isinstance(graph.get("nodes"), list):
        return _ui_needs(graph)
    prompt = {k: v for k, v in graph.items() if _is_api_node(v)}
    return requirements_of(cast(ApiPrompt, prompt))


def missing(needs: Needs, catalogue: Mapping[str, Any]) -> Needs:
    """What of `needs` the room's catalogue lacks: node types it has no definition for, and
    model files no combo input of any of its nodes lists (`CheckpointLoaderSimple.ckpt_name`,
    `LoraLoader.lora_name`, custom loaders alike).

    A model counts as offered when a combo lists it by the same name, or by the same file
    name in another subfolder (`SDXL/x.safetensors` for `x.safetensors`): the GPU has the
    file, the participant picks it from the list."""
    return lacking(needs, offer_of(catalogue))


@dataclass(frozen=True)
class Offer:
    """What a catalogue offers, read once for checking many workflows against it."""

    node_types: frozenset[str]
    models: frozenset[str]  # as listed, `/` separators
    model_files: frozenset[str]  # their file names, without a subfolder


def offer_of(catalogue: Mapping[str, Any]) -> Offer:
    models = offered_models(catalogue)
    return Offer(frozenset(catalogue), models, frozenset(_file_name(m) for m in models))


def lacking(needs: Needs, offer: Offer) -> Needs:
    """`missing`, against an offer read before."""
    node_types = needs.node_types - FRONTEND_NODE_TYPES - offer.node_types
    models = frozenset(
        m
        for m in needs.models
        if _normal(m) not in offer.models and _file_name(m) not in offer.model_files
    )
    return Needs(node_types, models)


def offered_models(catalogue: Mapping[str, Any]) -> frozenset[str]:
    """Every model-like file name any combo input of the catalogue lists (`/` separators)."""
    return frozenset(
        _normal(choice)
        for choices in _combo_lists(catalogue)
        for choice in choices
        if _is_model_name(choice)
    )


def describe(gap: Needs) -> str:
    """A gap in words, for people: "node types A, B; models x.safetensors"."""
    parts = []
    if gap.node_types:
        parts.append("node types " + ", ".join(sorted(gap.node_types)))
    if gap.models:
        parts.append("models " + ", ".join(sorted(gap.models)))
    return "; ".join(parts)


# --- UI format -----------------------------------------------------------------------------


def _ui_needs(graph: Mapping[str, Any]) -> Needs:
    subgraphs = _subgraph_definitions(graph)
    groups = _group_node_definitions(graph)
    nodes = list(_ui_nodes(graph, subgraphs, groups))
    node_types = {
        t
        for t in (n.get("type") for n in nodes)
        if isinstance(t, str)
        and t
        and t not in subgraphs
        and t not in FRONTEND_NODE_TYPES
        and not t.startswith(_GROUP_NODE_PREFIXES)
    }
    models = {m for n in nodes if n.get("mode") not in _NOT_RUN_MODES for m in _node_models(n)}
    return Needs(frozenset(node_types), frozenset(models))


def _ui_nodes(
    graph: Mapping[str, Any],
    subgraphs: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Mapping[str, Any]],
) -> Iterator[Mapping[str, Any]]:
    """The graph's own nodes, every subgraph definition's and every group node's inner nodes."""
    for holder in (graph, *subgraphs.values(), *groups.values()):
        nodes = holder.get("nodes")
        for node in nodes if isinstance(nodes, list) else []:
            if isinstance(node, Mapping):
                yield node


def _subgraph_definitions(graph: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Subgraph id -> definition, those nested in other definitions too."""
    found: dict[str, Mapping[str, Any]] = {}
    pending = [graph]
    while pending:
        definitions = pending.pop().get("definitions")
        subs = definitions.get("subgraphs") if isinstance(definitions, Mapping) else None
        for sub in subs if isinstance(subs, list) else []:
            if (
                isinstance(sub, Mapping)
                and isinstance(sub.get("id"), str)
                and sub["id"] not in found
            ):
                found[sub["id"]] = sub
                pending.append(sub)
    return found


def _group_node_definitions(graph: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    extra = graph.get("extra")
    groups = extra.get("groupNodes") if isinstance(extra, Mapping) else None
    if not isinstance(groups, Mapping):
        return {}
    return {name: g for name, g in groups.items() if isinstance(g, Mapping)}


def _node_models(node: Mapping[str, Any]) -> Iterator[str]:
    """Model files a node names: model-like widget values, and `properties.models[].name`
    (newer templates list each loader's file there with its download URL)."""
    if node.get("type") in _NOTE_TYPES:
        return
    yield from (v for v in _strings(node.get("widgets_values"), 0) if _is_model_name(v))
    properties = node.get("properties")
    listed = properties.get("models") if isinstance(properties, Mapping) else None
    for model in listed if isinstance(listed, list) else []:
        name = model.get("name") if isinstance(model, Mapping) else None
        if isinstance(name, str) and name.strip():
            yield name.strip()


def _strings(value: Any, depth: int) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif depth < _MAX_DEPTH and isinstance(value, list):
        for item in value:
            yield from _strings(item, depth + 1)
    elif depth < _MAX_DEPTH and isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item, depth + 1)


# --- API format and catalogue --------------------------------------------------------------


def _is_api_node(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("class_type"), str)
        and isinstance(value.get("inputs"), Mapping)
    )


def _combo_lists(catalogue: Mapping[str, Any]) -> Iterator[list[Any]]:
    """The choice list of every combo input in the catalogue, classic (`[[choices], {...}]`)
    or `COMBO` form (`["COMBO", {"options": [...]}]`)."""
    for node in catalogue.values():
        inputs = node.get("input") if isinstance(node, Mapping) else None
        for specs in inputs.values() if isinstance(inputs, Mapping) else []:
            for spec in specs.values() if isinstance(specs, Mapping) else []:
                if not isinstance(spec, list) or not spec:
                    continue
                if isinstance(spec[0], list):
                    yield spec[0]
                elif spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
                    options = spec[1].get("options")
                    if isinstance(options, list):
                        yield options


def _is_model_name(value: object) -> bool:
    return isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS)


def _normal(name: str) -> str:
    return name.replace("\\", "/").strip()


def _file_name(name: str) -> str:
    return _normal(name).rsplit("/", 1)[-1]
