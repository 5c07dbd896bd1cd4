"""The room's controls and a user's overrides, as the instructor sets them live."""

from __future__ import annotations

from dataclasses import dataclass

from queue_manager.core.scheduling import Mode
from queue_manager.core.templates import DEFAULT_MODE as DEFAULT_TEMPLATES_MODE
from queue_manager.core.templates import TemplatesMode


@dataclass(frozen=True)
class RoomControl:
    paused: bool
    mode: Mode
    max_queued: int  # per user; -1 means no limit
    max_running: int
    max_attempts: int
    broadcast: str = ""  # the instructor's message on every participant's page ('' = none)
    # What the Templates browser shows of ComfyUI's official templates (core.templates).
    templates: TemplatesMode = DEFAULT_TEMPLATES_MODE


@dataclass(frozen=True)
class UserControl:
    paused: bool
    max_queued: int | None  # None: the room default applies
    max_running: int | None
