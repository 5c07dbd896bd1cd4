"""Nodes that report on a value rather than change it: GetImageSize and PreviewAny."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from PIL import Image

from worker.simulator.runtime import Images, NodeContext, NodeResult


async def get_image_size(ctx: NodeContext, *, image: Images) -> NodeResult:
    width, height = image[0].size if image else (0, 0)
    batch_size = len(image)
    # Shown on the node in the frontend; the wording is ComfyUI's.
    await ctx.text(f"width: {width}, height: {height}\n batch size: {batch_size}")
    return NodeResult((width, height, batch_size))


async def preview_any(ctx: NodeContext, *, source: Any = None) -> NodeResult:
    text = describe(source)
    return NodeResult((text,), ui={"text": [text]})


def describe(value: Any) -> str:
    """ComfyUI's PreviewAny text: strings as they are, numbers and booleans with str(),
    anything else as JSON when it can be, else str()."""
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    if isinstance(value, int | float | bool):
        return str(value)
    try:
        return json.dumps(value, default=_jsonable)
    except (TypeError, ValueError):
        return str(value)


def _jsonable(value: Any) -> Any:
    # The simulator's own link values, described without memory addresses so that the text
    # is the same from run to run.
    if isinstance(value, Image.Image):
        return f"<image {value.mode} {value.width}x{value.height}>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
