"""ComfyUI's official workflow templates as installed: found the way ComfyUI finds them.

The `comfyui-workflow-templates` distribution is split: `-core` holds the manifest (every
template and the files it has) and the loader, `-json` the workflows and indexes, and six
media packages (`-media-api`, `-media-image`, `-media-video`, `-media-other`,
`-media-assets-01`, `-02`; about 525 MB together) the thumbnails and logos. ComfyUI's server
maps each file name of the manifest to the package that holds it and serves exactly those
names under `/templates/`; so does this module. A file whose package is not installed is
simply not there (the page gets drawn thumbnails instead: see `core.templates`).

Only names the manifest lists can be served, so a request path is looked up, never joined to a
folder: `..` and its encodings cannot name anything here. Blocking (file reads, imports): call
from a thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DISTRIBUTIONS = ("comfyui-workflow-templates-core", "comfyui-workflow-templates-json")


class TemplatePackage:
    def __init__(self) -> None:
        self._assets: dict[str, Path] | None = None
        self._lock = threading.Lock()

    def assets(self) -> Mapping[str, Path]:
        """File name (as the page asks for it) -> where it is installed; read once."""
        with self._lock:
            if self._assets is None:
                self._assets = _installed_assets()
            return self._assets

    def path(self, name: str) -> Path | None:
        return self.assets().get(name)

    def read_json(self, name: str) -> Any | None:
        """The parsed JSON file `name`, or None when it is not installed or not JSON."""
        path = self.path(name)
        if path is None:
            return None
        try:
            return json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("template file %s unreadable: %s", name, exc)
            return None

    def version(self) -> str | None:
        """The installed JSON package's version (what the templates are)."""
        try:
            return metadata.version(DISTRIBUTIONS[1])
        except metadata.PackageNotFoundError:
            return None


def _installed_assets() -> dict[str, Path]:
    try:
        from comfyui_workflow_templates_core import get_asset_path, iter_templates
    except ImportError:
        log.warning("comfyui-workflow-templates-core is not installed: no official templates")
        return {}
    found: dict[str, Path] = {}
    absent = 0
    for entry in iter_templates():
        for asset in entry.assets:
            try:
                found[asset.filename] = Path(get_asset_path(entry.template_id, asset.filename))
            except (FileNotFoundError, KeyError):  # its media package is not installed
                absent += 1
    log.info("official templates: %d files installed, %d not (media packages)", len(found), absent)
    return found
