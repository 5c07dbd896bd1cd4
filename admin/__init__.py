"""The instructor's dashboard (`/admin`), mounted in the queue manager (issue 6).

`STATIC_DIR` holds the page (`index.html`, `dashboard.js`, `dashboard.css`; no build step),
served at `/admin/` and `/admin/static/<file>` to instructors only; see `admin/README.md`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["STATIC_DIR"]

STATIC_DIR: Final[Path] = Path(__file__).parent / "static"
"""The folder served as `/admin/static/`; `index.html` is also served at `/admin/`."""
