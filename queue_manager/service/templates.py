"""The participants' Templates browser: the workshop's published workflows first, then
ComfyUI's official templates, marked or hidden (the instructor's `templates` mode) where the
room's GPUs lack their models or nodes.

What each official template needs is read once, lazily, in a thread (the package does not
change while we run); what the room lacks of it is worked out once per catalogue (a new one
comes when a GPU joins, leaves or reports new models). Published workflows are read at each
request: they change live and are few.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from queue_manager.core.ids import UserId
from queue_manager.core.templates import (
    WORKSHOP_CATEGORY,
    TemplateRequest,
    TemplatesMode,
    WorkshopEntry,
    is_partner,
    logo_index,
    parse_request,
    placeholder_svg,
    room_index,
    titles,
    workshop_category,
)
from queue_manager.core.workflow_needs import Needs, Offer, lacking, needs_of, offer_of
from queue_manager.core.workflows import (
    PublishedWorkflow,
    WorkflowFormat,
    encoded,
    for_participant,
)
from queue_manager.service.catalog import CatalogView
from queue_manager.service.parts import QueueParts
from queue_manager.storage.templates import TemplatePackage

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
SVG_TYPE = "image/svg+xml"
_ENGLISH_INDEX = "index.json"


@dataclass(frozen=True)
class TemplateFile:
    """An answer to `/templates/...`: an installed file, or bytes made here."""

    path: Path | None = None
    body: bytes = b""
    media_type: str = JSON_TYPE


@dataclass(frozen=True)
class TemplatesOverview:
    """What the instructor sees of the Templates browser."""

    mode: TemplatesMode
    package_version: str | None
    official: int  # templates in the package's index
    runnable: int | None  # of them, those the room's GPUs can run (None: no GPU reported yet)
    lacking: dict[str, str]  # name -> what the GPUs lack (models and node types, in words)

    def as_json(self) -> dict[str, object]:
        return {
            "mode": self.mode.value,
            "package_version": self.package_version,
            "official": self.official,
            "runnable": self.runnable,
            "lacking": self.lacking,
        }


class TemplateShelf:
    """The package's indexes and each template's needs (read once: the package does not
    change while we run), and the gaps for the last catalogue. Blocking and thread-safe:
    call in a thread. One per process (`installed_templates`)."""

    def __init__(self, package: TemplatePackage) -> None:
        self.package = package
        self._indexes: dict[str, list[dict[str, Any]]] = {}
        self._needs: dict[str, Needs] | None = None
        self._against: tuple[Mapping[str, Any], Offer, dict[str, Needs]] | None = None
        self._lock = threading.Lock()

    def index(self, name: str) -> list[dict[str, Any]]:
        """The package's index file `name` (English where it has no such file)."""
        with self._lock:
            return self._index(name)

    def _index(self, name: str) -> list[dict[str, Any]]:
        if name not in self._indexes:
            data = self.package.read_json(name)
            if not isinstance(data, list):
                # Not kept: a page may ask for any locale, and there is one English index.
                return [] if name == _ENGLISH_INDEX else self._index(_ENGLISH_INDEX)
            self._indexes[name] = [c for c in data if isinstance(c, dict)]
        return self._indexes[name]

    def against(self, catalogue: Mapping[str, Any]) -> tuple[Offer, dict[str, Needs]]:
        """What `catalogue` offers, and what it lacks per official template (kept while the
        room's catalogue is the same object)."""
        with self._lock:
            if self._against is None or self._against[0] is not catalogue:
                offer = offer_of(catalogue)
                gaps = {name: lacking(n, offer) for name, n in self._all_needs().items()}
                self._against = (catalogue, offer, gaps)
            return self._against[1], self._against[2]

    def _all_needs(self) -> dict[str, Needs]:
        if self._needs is None:
            self._needs = {}
            for name in titles(self._index(_ENGLISH_INDEX)):
                graph = self.package.read_json(f"{name}.json")
                self._needs[name] = needs_of(graph) if isinstance(graph, dict) else _NONE
            log.info("official templates: the needs of %d read", len(self._needs))
        return self._needs


@functools.cache
def installed_templates() -> TemplateShelf:
    """The installed package's shelf, shared by every service of the process."""
    return TemplateShelf(TemplatePackage())


class TemplateCases(QueueParts):
    @property
    def _template_shelf(self) -> TemplateShelf:
        return installed_templates()

    async def templates_mode(self) -> TemplatesMode:
        return (await self._control.room()).templates

    async def template_index(self, locale: str | None) -> bytes:
        """`templates/index.json` (or a locale's) as this room serves it."""
        shelf = self._template_shelf
        mode = await self.templates_mode()
        view = await self._catalog.current()
        workflows = [w for w in await self._workflows.all() if w.format is WorkflowFormat.UI]
        name = f"index.{locale}.json" if locale else _ENGLISH_INDEX

        def build() -> bytes:
            offer, gaps = shelf.against(view.object_info)
            known = view.from_workers  # before any GPU reported, nothing is known to be missing
            entries = [
                WorkshopEntry(w.name, lacking(needs_of(w.graph), offer) if known else _NONE,
                              w.published_at)
                for w in workflows
            ]  # fmt: skip
            workshop = workshop_category(entries, _date) if entries else None
            assets = shelf.package.assets()
            official = shelf.index(name)
            return _dumps(
                room_index(official, workshop, mode, gaps if known else None, assets.__contains__)
            )

        return await asyncio.to_thread(build)

    async def template_logos(self) -> bytes:
        """`templates/index_logo.json`: the logos that are installed."""
        package = self._template_shelf.package

        def build() -> bytes:
            logos = package.read_json("index_logo.json")
            found = logo_index(
                logos if isinstance(logos, dict) else {}, package.assets().__contains__
            )
            return _dumps(found)

        return await asyncio.to_thread(build)

    async def template_file(self, user: UserId, path: str) -> TemplateFile | None:
        """What `templates/<path>` answers for `user`; None: nothing there (404)."""
        request = parse_request(path)
        if request is None:
            return None
        if request.kind == "index":
            return TemplateFile(body=await self.template_index(request.locale))
        if request.kind == "logos":
            return TemplateFile(body=await self.template_logos())
        published = await self._published_ui(request)
        if published is not None and request.kind == "workflow":
            view = await self._catalog.current()
            return TemplateFile(body=_participants_copy(published, user, view))
        if published is not None:
            drawn = placeholder_svg(published.name, WORKSHOP_CATEGORY)
            return TemplateFile(body=drawn, media_type=SVG_TYPE)
        return await asyncio.to_thread(self._official_file, request)

    async def _published_ui(self, request: TemplateRequest) -> PublishedWorkflow | None:
        if request.kind not in ("workflow", "thumbnail"):
            return None
        found = await self._workflows.get(request.name)
        if found is None or found.format is not WorkflowFormat.UI:
            return None
        return found

    def _official_file(self, request: TemplateRequest) -> TemplateFile | None:
        shelf = self._template_shelf
        if request.kind == "thumbnail":
            named = titles(shelf.index(_ENGLISH_INDEX))
            if request.name not in named:
                return None
            drawn = placeholder_svg(named[request.name], "ComfyUI template")
            return TemplateFile(body=drawn, media_type=SVG_TYPE)
        filename = f"{request.name}.json" if request.kind == "workflow" else request.name
        path = shelf.package.path(filename)
        return TemplateFile(path=path) if path is not None else None

    async def templates_overview(self) -> TemplatesOverview:
        """The mode, and which official templates the room's GPUs cannot run and why."""
        shelf = self._template_shelf
        view = await self._catalog.current()
        mode = await self.templates_mode()

        def build() -> TemplatesOverview:
            official = shelf.index(_ENGLISH_INDEX)
            _, gaps = shelf.against(view.object_info)
            partners = {t for c in official for t in _names_of(c, partner=True)}
            known = view.from_workers
            lacking_words = {
                name: _words(gap if known else _NONE, name in partners)
                for name, gap in sorted(gaps.items())
                if (known and (gap.node_types or gap.models)) or name in partners
            }
            return TemplatesOverview(
                mode=mode,
                package_version=shelf.package.version(),
                official=len(gaps),
                runnable=len(gaps) - len(lacking_words) if known else None,
                lacking=lacking_words,
            )

        return await asyncio.to_thread(build)


_NONE = Needs(frozenset(), frozenset())


def _participants_copy(workflow: PublishedWorkflow, user: UserId, view: CatalogView) -> bytes:
    """The graph as `user` gets it in the Workflows sidebar too (their own seed if asked)."""
    return encoded(for_participant(workflow, user, view.object_info))


def _names_of(category: Mapping[str, Any], *, partner: bool) -> Sequence[str]:
    templates = category.get("templates")
    return [
        t["name"]
        for t in (templates if isinstance(templates, list) else [])
        if isinstance(t, dict) and isinstance(t.get("name"), str) and is_partner(t) == partner
    ]


def _words(gap: Needs, partner: bool) -> str:
    parts = ["Comfy.org's paid API (partner nodes)"] if partner else []
    if gap.models:
        parts.append("models " + ", ".join(sorted(gap.models)))
    if gap.node_types:
        parts.append("node types " + ", ".join(sorted(gap.node_types)))
    return "; ".join(parts)


def _date(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).date().isoformat()


def _dumps(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
