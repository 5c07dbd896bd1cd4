"""What the room is making: the instructor's gallery of every participant's outputs, and the
one output shown to everyone ("show and tell"), as pure shapes and rules.

A gallery item is a completed job with its outputs (by user and time) and a short account of
the workflow that made them, read from the job's API prompt. The showcase is kept whole for
the queue manager (whose file it is) and shown to the pages only as `Showcase.public()`:
never the author's folder, file name or job, and the author's name only when the instructor
chose to show it.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import BaseModel, JsonValue

from queue_manager.core.ids import JobId, UserId

MediaKind = Literal["image", "video", "audio", "other"]
# What can be put on every participant's screen: the page shows these inline, safely.
SHOWABLE: frozenset[MediaKind] = frozenset({"image", "video", "audio"})
PAGE_SIZE = 40
MAX_PAGE_SIZE = 200
MAX_CAPTION = 200
_MAX_TEXT = 300
_MAX_TYPES = 12


def media_kind(content_type: str) -> MediaKind:
    """How a file is shown, from the content type its extension gives (`comfy.view`). SVG can
    carry script: it is "other", never drawn inline."""
    major, _, minor = content_type.partition(";")[0].strip().lower().partition("/")
    if major == "image" and not minor.startswith("svg"):
        return "image"
    if major == "video":
        return "video"
    if major == "audio":
        return "audio"
    return "other"


class GalleryOutput(BaseModel):
    index: int  # its place among the job's outputs: what the gallery's routes name
    filename: str
    subfolder: str
    type: str  # ComfyUI's folder: output | temp
    media: MediaKind
    size: int


class WorkflowSummary(BaseModel):
    """What made it, at a glance: how many nodes, which kinds, and the first prompt text."""

    nodes: int
    node_types: list[str]
    text: str


class GalleryItem(BaseModel):
    job: JobId
    user: UserId
    finished_at: float
    outputs: list[GalleryOutput]
    workflow: WorkflowSummary


class GalleryPage(BaseModel):
    items: list[GalleryItem]
    next: JobId | None  # pass as `after` for the next (older) page; None at the end


def gallery_outputs(
    recorded: list[dict[str, JsonValue]], content_type: dict[str, str]
) -> list[GalleryOutput]:
    """A job's recorded outputs as the gallery shows them; `content_type` maps each file name
    to its type (from `comfy.view.content_type`). Entries of the wrong shape are left out."""
    shown = []
    for index, raw in enumerate(recorded):
        filename, subfolder = raw.get("filename"), raw.get("subfolder", "")
        if not isinstance(filename, str) or not isinstance(subfolder, str):
            continue
        size, kind = raw.get("size"), raw.get("type", "output")
        shown.append(
            GalleryOutput(
                index=index,
                filename=filename,
                subfolder=subfolder,
                type=kind if isinstance(kind, str) else "output",
                media=media_kind(content_type.get(filename, "")),
                size=size if isinstance(size, int) else 0,
            )
        )
    return shown


def summarize(prompt: dict[str, JsonValue]) -> WorkflowSummary:
    """Node count, distinct node types (at most a dozen) and the first text input (the
    positive prompt of the stock graphs: the lowest node id with a `text` string)."""
    nodes = [n for n in prompt.values() if isinstance(n, dict)]
    types: list[str] = []
    for node in nodes:
        kind = node.get("class_type")
        if isinstance(kind, str) and kind not in types:
            types.append(kind)
    return WorkflowSummary(
        nodes=len(nodes), node_types=types[:_MAX_TYPES], text=_first_text(prompt)
    )


def _first_text(prompt: dict[str, JsonValue]) -> str:
    for _, node in sorted(prompt.items(), key=lambda item: _node_order(item[0])):
        inputs = node.get("inputs") if isinstance(node, dict) else None
        text = inputs.get("text") if isinstance(inputs, dict) else None
        if isinstance(text, str) and text.strip():
            return text.strip()[:_MAX_TEXT]
    return ""


def _node_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


def ui_workflow(extra_data: dict[str, JsonValue]) -> dict[str, JsonValue] | None:
    """The graph as the participant's page had it (`extra_pnginfo.workflow`, what ComfyUI
    embeds in a PNG), if the page sent it."""
    info = extra_data.get("extra_pnginfo")
    workflow = info.get("workflow") if isinstance(info, dict) else None
    return workflow if isinstance(workflow, dict) else None


def clean_caption(text: str) -> str:
    """One line of at most MAX_CAPTION characters, without control characters."""
    flat = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return " ".join(flat.split())[:MAX_CAPTION]


class Showcase(BaseModel):
    """The output shown to everyone now, as kept in Redis (the queue manager's own record)."""

    id: str  # new at every show: pages and caches tell one showing from the next
    job: JobId
    user: UserId
    index: int
    filename: str
    subfolder: str
    type: str
    media: MediaKind
    caption: str
    with_author: bool
    at: float
    by: UserId

    def public(self) -> dict[str, JsonValue]:
        """What every page is told: no job, no file name, the author only if chosen."""
        return {
            "id": self.id,
            "media": self.media,
            "caption": self.caption,
            "author": self.user if self.with_author else None,
            "at": self.at,
        }


NOTHING_SHOWN: dict[str, JsonValue] = {"id": None}
