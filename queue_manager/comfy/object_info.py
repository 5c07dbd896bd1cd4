"""The node catalogue a participant's page sees: the workers' `object_info`, merged, with the
upload inputs (LoadImage's file list) showing that participant's own files.

Pure: the caller brings the catalogues and the file names.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def output_nodes(prompt: Any, object_info: Mapping[str, Any]) -> tuple[str, ...]:
    """The ids of a prompt's output nodes (`output_node` in the catalogue), in prompt order;
    a node of a class the catalogue lacks is not one."""
    if not isinstance(prompt, Mapping):
        return ()
    return tuple(
        str(node_id)
        for node_id, node in prompt.items()
        if isinstance(node, Mapping)
        and isinstance(node.get("class_type"), str)
        and object_info.get(node["class_type"], {}).get("output_node")
    )


# Input options that mark a file chooser over the input folder (ComfyUI's `*_upload` flags).
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")


def merge(catalogues: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One catalogue from several workers: every node type any of them has; where several
    have a node, its combo lists (model files, mostly) are the union, in first-seen order."""
    if len(catalogues) == 1:
        return dict(catalogues[0])
    merged: dict[str, Any] = {}
    for catalogue in catalogues:
        for name, node in catalogue.items():
            if name not in merged:
                merged[name] = node
            elif node != merged[name]:
                merged[name] = _merge_node(merged[name], node)
    return merged


def _merge_node(first: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    node = copy.deepcopy(dict(first))
    for section, specs in (other.get("input") or {}).items():
        if not isinstance(specs, Mapping):
            continue
        mine = node.setdefault("input", {}).setdefault(section, {})
        for input_name, spec in specs.items():
            if input_name not in mine:
                mine[input_name] = spec
                continue
            ours, theirs = _options(mine[input_name]), _options(spec)
            if ours is not None and theirs is not None:
                ours.extend(o for o in theirs if o not in ours)
    return node


def _options(spec: Any) -> list[Any] | None:
    """The (mutable) choice list of a combo spec, classic or `COMBO` form; else None."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        return options if isinstance(options, list) else None
    return None


def upload_inputs(catalogue: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(node, section, input, flag) of every file-chooser input in the catalogue."""
    found = []
    for name, node in catalogue.items():
        inputs = node.get("input") if isinstance(node, Mapping) else None
        for section, specs in (inputs or {}).items():
            if not isinstance(specs, Mapping):
                continue
            for input_name, spec in specs.items():
                opts = spec[1] if isinstance(spec, list) and len(spec) > 1 else None
                if not isinstance(opts, Mapping):
                    continue
                flag = next((f for f in UPLOAD_FLAGS if opts.get(f)), None)
                if flag is not None:
                    found.append((name, section, input_name, flag))
    return found


def for_user(
    catalogue: Mapping[str, Any],
    uploads: Iterable[tuple[str, str, str, str]],
    files: Mapping[str, list[str]],
) -> dict[str, Any]:
    """The catalogue with each file chooser listing the user's files (`files[flag]`), never
    the worker's. Only the nodes concerned are copied; the rest is shared."""
    view = dict(catalogue)
    for name, section, input_name, flag in uploads:
        if name not in view:
            continue
        if view[name] is catalogue[name]:
            view[name] = copy.deepcopy(catalogue[name])
        spec = view[name]["input"][section][input_name]
        options = _options(spec)
        if options is not None:
            options[:] = list(files.get(flag, []))
    return view
