"""The per-user ComfyUI pages and our small frontend extension (issue 5).

`EXTENSION_DIR` holds the browser extension (`workshop.js`, `workshop.css`) that the queue
manager serves at `/userNNN/extensions/comfy-workshop/`; see `frontend/README.md`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["EXTENSION_DIR", "EXTENSION_ENTRY", "EXTENSION_NAME"]

EXTENSION_DIR: Final[Path] = Path(__file__).parent / "extension"
"""The folder served as `/userNNN/extensions/comfy-workshop/`."""

EXTENSION_NAME: Final[str] = "comfy-workshop"
"""The folder name under `extensions/` in the page's URL space."""

EXTENSION_ENTRY: Final[str] = f"/extensions/{EXTENSION_NAME}/workshop.js"
"""What `GET /userNNN/api/extensions` lists. The frontend imports `api.fileURL(entry)`,
which prefixes the page's base path (`/userNNN`) itself, so the entry carries no prefix."""
