"""The participants' Templates browser, as pure rules: which file a `/templates/...` request
names, the index the page gets (the workshop's own workflows first, ComfyUI's official
templates after them, marked or hidden where the room's GPUs cannot run them), and the
stand-in thumbnails.

The page (comfyui-frontend-package 1.58.1, `getCoreWorkflowTemplates`, `fetchTemplateJson`,
`getTemplateThumbnailUrl`, `fetchLogoIndex`) asks for `templates/index.json` (or
`index.<locale>.json`), `templates/index_logo.json`, `templates/<name>.json` to open one, and
`templates/<name>-<1|2>.<mediaSubtype>` for its thumbnails.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

from queue_manager.core.workflow_needs import Needs


class TemplatesMode(enum.StrEnum):
    """What the instructor lets the Templates browser show of ComfyUI's official templates
    (the workshop's own workflows are always there)."""

    ALL = "all"  # every official template, as ComfyUI shows it
    MARK = "mark"  # every one; those the room cannot run say why, first thing
    HIDE = "hide"  # only those the room's GPUs can run
    OFF = "off"  # none: the browser shows the workshop's workflows only


DEFAULT_MODE = TemplatesMode.MARK
WORKSHOP_CATEGORY = "Workshop"
# The stand-in thumbnail's format: drawn here, so it needs no media package.
PLACEHOLDER_SUBTYPE = "svg"
MAX_PATH_CHARS = 300
# `index.<x>.json` files of the package that are no locale's index.
_NOT_LOCALES = frozenset({"mcp", "schema"})
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}$")
_SHOWN_NAMES = 4  # names listed in a mark; the rest are counted
# Templates whose thumbnails come in two pictures (`-1` and `-2`).
_TWO_PICTURES = frozenset({"compareSlider", "hoverDissolve"})

MISSING_MODELS = "Missing models"
MISSING_NODES = "Missing nodes"
PARTNER_NOTE = (
    "Runs on Comfy.org's paid API (partner nodes), not on this workshop's GPUs: needs a "
    "Comfy.org account with credits and the internet. "
)


@dataclass(frozen=True)
class TemplateRequest:
    kind: Literal["index", "logos", "workflow", "thumbnail", "asset"]
    name: str  # workflow: without `.json`; thumbnail: the template's name; asset: the path
    locale: str | None = None  # index: None for English


def parse_request(path: str) -> TemplateRequest | None:
    """What `/templates/<path>` asks for; None for anything that cannot name a template file
    (backslashes, `..`, empty or dot parts, control characters, absolute paths)."""
    if not path or len(path) > MAX_PATH_CHARS or path.startswith("/") or "\\" in path:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return None
    if any(part in ("", ".", "..") for part in path.split("/")):
        return None
    if path == "index.json":
        return TemplateRequest("index", path)
    if path == "index_logo.json":
        return TemplateRequest("logos", path)
    middle = path.removeprefix("index.").removesuffix(".json")
    if path.startswith("index.") and path.endswith(".json") and _is_locale(middle):
        return TemplateRequest("index", path, middle)
    if "/" in path:  # the package's logos (`logo/x.png`); nothing else has a folder
        return TemplateRequest("asset", path)
    if path.endswith(".json") and len(path) > len(".json"):
        return TemplateRequest("workflow", path.removesuffix(".json"))
    base, _, number = path.removesuffix("." + PLACEHOLDER_SUBTYPE).rpartition("-")
    if path.endswith("." + PLACEHOLDER_SUBTYPE) and base and number in ("1", "2"):
        return TemplateRequest("thumbnail", base)
    return TemplateRequest("asset", path)


def _is_locale(text: str) -> bool:
    return bool(_LOCALE.match(text)) and text.lower() not in _NOT_LOCALES


# --- the index --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkshopEntry:
    """A published workflow, as the Templates browser lists it."""

    name: str
    gap: Needs  # what the room's GPUs lack for it (empty: nothing)
    published_at: float = 0.0


def workshop_category(
    entries: Sequence[WorkshopEntry], date: Callable[[float], str]
) -> dict[str, Any]:
    """The workshop's own category, in the instructor's order; `isEssential` makes the page
    list it at the top of its side bar (1.58.1), `moduleName` default makes the page fetch
    `templates/<name>.json`."""
    return {
        "moduleName": "default",
        "category": WORKSHOP_CATEGORY,
        "title": WORKSHOP_CATEGORY,
        "icon": "icon-[lucide--graduation-cap]",
        "type": "image",
        "isEssential": True,
        "templates": [_workshop_template(e, date) for e in entries],
    }


def _workshop_template(entry: WorkshopEntry, date: Callable[[float], str]) -> dict[str, Any]:
    return {
        "name": entry.name,
        "title": entry.name,
        "description": gap_note(entry.gap) + "A workflow of this workshop, from the instructor.",
        "mediaType": "image",
        "mediaSubtype": PLACEHOLDER_SUBTYPE,
        "tags": [*gap_tags(entry.gap), WORKSHOP_CATEGORY],
        "models": [],
        "date": date(entry.published_at),
        "openSource": True,
        "size": 0,
        "usage": 0,
        "username": WORKSHOP_CATEGORY,
    }


def room_index(
    official: Sequence[Mapping[str, Any]],
    workshop: Mapping[str, Any] | None,
    mode: TemplatesMode,
    gaps: Mapping[str, Needs] | None,
    has_asset: Callable[[str], bool],
) -> list[dict[str, Any]]:
    """The index the page gets: the workshop's category (if any) first, then the official
    categories as `mode` says. `gaps`: what the room's GPUs lack per official template; None
    when no GPU has reported yet (nothing is marked or hidden for want of a GPU then).
    Templates whose thumbnails are not installed get a drawn stand-in; names the workshop
    uses are left out of the official ones (its own would open in their place)."""
    index = [dict(workshop)] if workshop and workshop.get("templates") else []
    if mode is TemplatesMode.OFF:
        return index
    taken = {t["name"] for c in index for t in c["templates"]}
    for category in official:
        templates = []
        for template in _templates_of(category):
            if template["name"] in taken:
                continue
            shown = _shown(template, mode, gaps, has_asset)
            if shown is not None:
                templates.append(shown)
        if templates:
            index.append({**category, "templates": templates})
    return index


def _templates_of(category: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    templates = category.get("templates")
    return [
        t
        for t in (templates if isinstance(templates, list) else [])
        if isinstance(t, Mapping) and isinstance(t.get("name"), str)
    ]


def _shown(
    template: Mapping[str, Any],
    mode: TemplatesMode,
    gaps: Mapping[str, Needs] | None,
    has_asset: Callable[[str], bool],
) -> dict[str, Any] | None:
    shown = dict(template)
    if not _has_thumbnails(template, has_asset):
        shown["mediaType"] = "image"
        shown["mediaSubtype"] = PLACEHOLDER_SUBTYPE
        shown.pop("thumbnailVariant", None)
    if mode is TemplatesMode.ALL:
        return shown
    gap = gaps.get(template["name"]) if gaps is not None else None
    note = (PARTNER_NOTE if is_partner(template) else "") + gap_note(gap)
    if not note:
        return shown
    if mode is TemplatesMode.HIDE:
        return None
    shown["description"] = note + str(template.get("description") or "")
    tags = template.get("tags")
    shown["tags"] = gap_tags(gap) + (list(tags) if isinstance(tags, list) else [])
    return shown


def is_partner(template: Mapping[str, Any]) -> bool:
    """A template of Comfy.org's paid API nodes (the page's own test: `openSource === false`)."""
    return template.get("openSource") is False


def _has_thumbnails(template: Mapping[str, Any], has_asset: Callable[[str], bool]) -> bool:
    name, subtype = template["name"], template.get("mediaSubtype")
    if not isinstance(subtype, str):
        return False
    count = 2 if template.get("thumbnailVariant") in _TWO_PICTURES else 1
    return all(has_asset(f"{name}-{n}.{subtype}") for n in range(1, count + 1))


def gap_note(gap: Needs | None) -> str:
    """The first words of a description when the room's GPUs lack something; '' if not."""
    if gap is None or (not gap.node_types and not gap.models):
        return ""
    parts = []
    if gap.models:
        parts.append("models " + _names(gap.models))
    if gap.node_types:
        parts.append("node types " + _names(gap.node_types))
    return "Needs what this workshop's GPUs don't have: " + "; ".join(parts) + ". "


def gap_tags(gap: Needs | None) -> list[str]:
    """Tags the page shows on the card itself (1.58.1 shows a description only when asked;
    partner templates have a badge of their own)."""
    if gap is None:
        return []
    return [
        tag
        for tag, lacks in ((MISSING_MODELS, gap.models), (MISSING_NODES, gap.node_types))
        if lacks
    ]


def _names(names: frozenset[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_SHOWN_NAMES])
    more = len(ordered) - _SHOWN_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def logo_index(logos: Mapping[str, Any], has_asset: Callable[[str], bool]) -> dict[str, str]:
    """`index_logo.json` with only the logos that are installed (the page asks for no other)."""
    return {k: v for k, v in logos.items() if isinstance(v, str) and has_asset(v)}


def titles(official: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Template name -> its title, for the stand-in thumbnails."""
    return {t["name"]: str(t.get("title") or t["name"]) for c in official for t in _templates_of(c)}


# --- stand-in thumbnails ----------------------------------------------------------------


def placeholder_svg(title: str, label: str) -> bytes:
    """A drawn thumbnail: the title on a colour of its own (the same title, the same colour)."""
    hue = int.from_bytes(hashlib.sha256(title.encode()).digest()[:2], "big") % 360
    lines = _wrapped(title, 22, 4)
    first_y = 200 - (len(lines) - 1) * 19
    text = "".join(
        f'<tspan x="200" y="{first_y + i * 38}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 400 400">'
        f'<rect width="400" height="400" fill="hsl({hue},45%,32%)"/>'
        '<text x="200" y="56" fill="#ffffffb0" font-family="sans-serif" font-size="20" '
        f'text-anchor="middle">{escape(label)}</text>'
        '<text fill="#fff" font-family="sans-serif" font-size="30" font-weight="600" '
        f'text-anchor="middle">{text}</text></svg>'
    ).encode()


def _wrapped(text: str, width: int, max_lines: int) -> list[str]:
    lines: list[str] = []
    for word in text.replace("_", " ").split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word[:width])
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: width - 1] + "…"]
    return lines or [""]
