"""Running a prompt on another ComfyUI (a pull worker's or a push endpoint's), pure:

* what a ComfyUI offers (node types, model files) from its `object_info`;
* which prompt inputs name uploaded files, and the prompt rewritten to collision-free names;
* the output files a finished prompt reports in its history entry.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from queue_manager.core.requirements import MODEL_EXTENSIONS

# Folder annotations ComfyUI accepts on file names: "x.png [input]".
_ANNOTATIONS = {" [input]": "inputs", " [output]": "outputs"}


@dataclass(frozen=True)
class Offer:
    node_types: frozenset[str]
    models: frozenset[str]


def offer_of(object_info: Mapping[str, Any]) -> Offer:
    """Node types, and every model file name its loaders list (combo options)."""
    models = {
        option
        for spec in _input_specs(object_info)
        for option in _combo_options(spec)
        if option.lower().endswith(MODEL_EXTENSIONS)
    }
    return Offer(frozenset(object_info), frozenset(models))


@dataclass(frozen=True)
class FileInput:
    node_id: str
    input_name: str
    kind: str  # "inputs" or "outputs": the participant's folder it comes from
    name: str  # relative name in that folder ("sub/x.png")


def file_inputs(prompt: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[FileInput]:
    """Inputs whose value names an uploaded file (object_info marks them `*_upload`)."""
    found = []
    for node_id, node in prompt.items():
        required = object_info.get(node.get("class_type"), {}).get("input", {})
        specs = {**required.get("required", {}), **required.get("optional", {})}
        for name, value in node.get("inputs", {}).items():
            if isinstance(value, str) and _is_upload(specs.get(name)):
                kind, plain = _split_annotation(value)
                found.append(FileInput(node_id, name, kind, plain))
    return found


def with_renamed_inputs(
    prompt: Mapping[str, Any], renames: Mapping[tuple[str, str], str]
) -> dict[str, Any]:
    """The prompt with (node id, input name) values replaced by their names on this ComfyUI."""
    out = copy.deepcopy(dict(prompt))
    for (node_id, input_name), value in renames.items():
        out[node_id]["inputs"][input_name] = value
    return out


@dataclass(frozen=True)
class OutputRef:
    node_id: str
    media: str  # "images", "gifs", "videos", "audio", ...
    filename: str
    subfolder: str
    type: str  # "output" | "temp" | "input"


def history_outputs(entry: Mapping[str, Any]) -> tuple[list[OutputRef], dict[str, Any]]:
    """The files a history entry reports (every media key), and the non-file UI output
    (e.g. PreviewAny's `text`) per node, to pass on as it is."""
    files: list[OutputRef] = []
    other: dict[str, Any] = {}
    for node_id, ui in (entry.get("outputs") or {}).items():
        for media, items in ui.items():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping) and "filename" in item:
                    files.append(
                        OutputRef(
                            node_id,
                            media,
                            str(item["filename"]),
                            str(item.get("subfolder", "")),
                            str(item.get("type", "output")),
                        )
                    )
                else:
                    other.setdefault(node_id, {}).setdefault(media, []).append(item)
    return files, other


def with_output_folder(prompt: Mapping[str, Any], folder: str) -> dict[str, Any]:
    """The prompt with every save node's `filename_prefix` put under `folder` (ComfyUI reads a
    `/` in the prefix as a subfolder): on a shared ComfyUI or a shared output mount, the job's
    files are then found by that folder and no other job's can be mistaken for them."""
    out = copy.deepcopy(dict(prompt))
    for node in out.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        value = inputs.get("filename_prefix") if isinstance(inputs, dict) else None
        if isinstance(value, str):
            inputs["filename_prefix"] = f"{folder}/{value.lstrip('/')}"  # type: ignore[index]
    return out


# How ComfyUI's save nodes name what they write, by extension: the history's media keys.
_MEDIA = {
    ".png": "images", ".jpg": "images", ".jpeg": "images", ".webp": "images", ".gif": "images",
    ".mp4": "videos", ".webm": "videos", ".mov": "videos", ".mkv": "videos",
    ".flac": "audio", ".wav": "audio", ".mp3": "audio", ".opus": "audio", ".ogg": "audio",
}  # fmt: skip


def save_prefixes(prompt: Mapping[str, Any]) -> dict[str, str]:
    """Each save node's `filename_prefix` as the participant wrote it (node id -> prefix)."""
    found = {}
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        value = inputs.get("filename_prefix") if isinstance(inputs, Mapping) else None
        if isinstance(value, str):
            found[str(node_id)] = value.lstrip("/")
    return found


def outputs_from_folder(
    folder: str, files: Sequence[str], prefixes: Mapping[str, str]
) -> dict[str, Any]:
    """A history entry's `outputs` rebuilt from the files a run left in its own folder of a
    shared output mount (`files` relative to that folder), where no replica returns the
    history: each file goes to the save node whose prefix names it."""
    outputs: dict[str, Any] = {}
    for rel in sorted(files):
        sub, _, name = rel.rpartition("/")
        for node_id, prefix in sorted(prefixes.items(), key=lambda p: -len(p[1])):
            psub, _, pname = prefix.rpartition("/")
            if sub == psub and name.startswith(f"{pname}_"):
                media = _MEDIA.get(name[name.rfind(".") :].lower(), "files")
                shown_sub = f"{folder}/{sub}" if sub else folder
                item = {"filename": name, "subfolder": shown_sub, "type": "output"}
                outputs.setdefault(node_id, {}).setdefault(media, []).append(item)
                break
    return outputs


def without_folder(subfolder: str, folder: str) -> str:
    """A reported subfolder as the participant named it (our job folder taken off)."""
    if subfolder == folder:
        return ""
    return subfolder.removeprefix(f"{folder}/")


def execution_error(data: Mapping[str, Any]) -> dict[str, Any]:
    """A job's error from ComfyUI's `execution_error` message (socket or history)."""
    return {
        "type": "execution_error",
        "message": str(data.get("exception_message", "")).strip() or "execution failed",
        "node_id": data.get("node_id"),
        "node_type": data.get("node_type"),
        "details": {
            "exception_type": data.get("exception_type"),
            "executed": data.get("executed", []),
        },
    }


def interrupted_error(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "execution_interrupted",
        "message": "interrupted on ComfyUI",
        "node_id": data.get("node_id"),
        "node_type": data.get("node_type"),
    }


def refusal_error(
    body: Mapping[str, Any], fallback: str = "ComfyUI refused the prompt"
) -> dict[str, Any]:
    """A job's error from ComfyUI's 400 answer to `POST /prompt` (node errors kept)."""
    raw = body.get("error")
    error: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    return {
        "type": str(error.get("type", "prompt_refused")),
        "message": str(error.get("message", fallback)),
        "details": {"node_errors": body.get("node_errors", {}), "error": error},
    }


def history_error(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The error a finished history entry records (None: it succeeded). ComfyUI keeps the
    run's messages in `status.messages` as [type, data] pairs."""
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return None
    for kind, data in reversed(status.get("messages") or []):
        if kind == "execution_error" and isinstance(data, Mapping):
            return execution_error(data)
        if kind == "execution_interrupted" and isinstance(data, Mapping):
            return interrupted_error(data)
    return {"type": "execution_error", "message": "the run failed on the endpoint"}


def history_finished(entry: Mapping[str, Any]) -> bool:
    """Whether a history entry is final (ComfyUI writes it when the run ends)."""
    status = entry.get("status") or {}
    return bool(status.get("completed")) or status.get("status_str") in ("success", "error")


def _input_specs(object_info: Mapping[str, Any]) -> Iterator[Any]:
    for node in object_info.values():
        inputs = node.get("input", {}) if isinstance(node, Mapping) else {}
        for section in ("required", "optional"):
            yield from inputs.get(section, {}).values()


def _combo_options(spec: Any) -> list[str]:
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], list):
        return [o for o in spec[0] if isinstance(o, str)]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        return [o for o in spec[1].get("options", []) if isinstance(o, str)]
    return []


def _is_upload(spec: Any) -> bool:
    return (
        isinstance(spec, list)
        and len(spec) > 1
        and isinstance(spec[1], Mapping)
        and any(k.endswith("_upload") and spec[1][k] for k in spec[1])
    )


def _split_annotation(value: str) -> tuple[str, str]:
    for suffix, kind in _ANNOTATIONS.items():
        if value.endswith(suffix):
            return kind, value[: -len(suffix)]
    return "inputs", value
