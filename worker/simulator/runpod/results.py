"""worker-comfyui's contract, as pure functions: the job input it accepts
(`{"workflow": {...}, "images": [{"name", "image": base64 or data URI}]}`), the files of a
ComfyUI history entry it returns (every output node's `images`, `temp` ones skipped), and the
shape of its answer: `{"images": [{"filename", "type": "base64", "data"}], "errors"?: [...]}`,
or a failure (`error`, with the details in the output)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InputImage:
    name: str
    data: bytes


@dataclass(frozen=True)
class JobInput:
    workflow: dict[str, Any]
    images: list[InputImage]


@dataclass(frozen=True)
class OutputRef:
    """One picture a history entry names, as `/view` takes it."""

    filename: str
    subfolder: str
    type: str


@dataclass(frozen=True)
class Outcome:
    """What the handler returns: `error` set means the job FAILED."""

    output: dict[str, Any] | None
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Outcome:
        return cls(None, error)


def parse_input(raw: Any) -> JobInput | str:
    """The job's input (an object, or a string of JSON), or the message worker-comfyui fails
    it with."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return "Invalid JSON format in input"
    if not isinstance(raw, dict):
        return "Please provide input"
    workflow = raw.get("workflow")
    if not isinstance(workflow, dict):
        return "Missing 'workflow' parameter"
    images = raw.get("images")
    if images is None:
        return JobInput(workflow, [])
    if not isinstance(images, list) or not all(_is_image_item(i) for i in images):
        return "'images' must be a list of objects with 'name' and 'image' keys"
    try:
        decoded = [InputImage(str(i["name"]), decode_image(str(i["image"]))) for i in images]
    except (binascii.Error, ValueError) as exc:
        return f"Invalid base64 image data: {exc}"
    return JobInput(workflow, decoded)


def _is_image_item(item: Any) -> bool:
    return isinstance(item, dict) and "name" in item and "image" in item


def decode_image(text: str) -> bytes:
    """Base64, with or without a `data:image/png;base64,` prefix."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    return base64.b64decode(text, validate=True)


def saved_images(entry: dict[str, Any]) -> list[OutputRef]:
    """The pictures a `/history/{id}` entry lists under its output nodes' `images`."""
    refs = []
    for node_output in (entry.get("outputs") or {}).values():
        for item in node_output.get("images", []) if isinstance(node_output, dict) else []:
            if isinstance(item, dict) and item.get("filename") and item.get("type") != "temp":
                kind = str(item.get("type") or "output")
                refs.append(OutputRef(str(item["filename"]), str(item.get("subfolder", "")), kind))
    return refs


def image_item(filename: str, data: bytes) -> dict[str, str]:
    return {"filename": filename, "type": "base64", "data": base64.b64encode(data).decode()}


def outcome(images: list[dict[str, str]], errors: list[str]) -> Outcome:
    """worker-comfyui's answer: images (with any errors beside them); no images but errors is
    a failure; neither is a success without images."""
    if images:
        return Outcome({"images": images, **({"errors": errors} if errors else {})})
    if errors:
        return Outcome({"details": errors}, "Job processing failed")
    return Outcome({"images": [], "status": "success_no_images"})


def validation_failure(body: Any) -> str:
    """The message for a workflow ComfyUI refused (`POST /prompt` 400)."""
    lines = []
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            lines.append(str(error.get("message") or error.get("type") or error))
        for node_id, node in (body.get("node_errors") or {}).items():
            for err in node.get("errors", []) if isinstance(node, dict) else []:
                lines.append(f"Node {node_id} ({err.get('type')}): {err.get('details')}")
    return "Workflow validation failed:\n" + "\n".join(f"• {line}" for line in lines)


def execution_failure(data: dict[str, Any]) -> str:
    """An `execution_error` message, as worker-comfyui words it."""
    return (
        f"Workflow execution error: Node Type: {data.get('node_type')}, "
        f"Node ID: {data.get('node_id')}, Message: {data.get('exception_message')}"
    )
