"""The per-user ComfyUI pages and our small frontend extension (issue 5).

`EXTENSION_DIR` holds the browser extension (`workshop.js`, `workshop.css`) that the queue
manager serves at `/userNNN/extensions/comfy-workshop/`; see `frontend/README.md`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["EXTENSION_DIR", "EXTENSION_NAME", "extension_entries"]

EXTENSION_DIR: Final[Path] = Path(__file__).parent / "extension"
"""The folder served as `/userNNN/extensions/comfy-workshop/`."""

EXTENSION_NAME: Final[str] = "comfy-workshop"
"""The folder name under `extensions/` in the page's URL space."""


def extension_entries() -> list[str]:
    """What `GET /userNNN/api/extensions` lists: every top-level `.js` module of the extension
    (one feature each: `workshop.js` the queue panel, ...); shared code lives in `lib/` and is
    imported by them. The frontend imports `api.fileURL(entry)`, which prefixes the page's base
    path (`/userNNN`) itself, so an entry carries no prefix."""
    return sorted(
        f"/extensions/{EXTENSION_NAME}/{path.name}" for path in EXTENSION_DIR.glob("*.js")
    )
