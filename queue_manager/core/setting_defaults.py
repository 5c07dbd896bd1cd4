"""The workshop's default ComfyUI settings for participants (pure).

A participant's page reads its settings from `GET /settings`; what the participant has saved
always wins, and the workshop's defaults fill in every setting they have not set. So a new
participant's first page is the workshop's (no template browser over an empty graph, no calls
to the frontend vendor's servers), and a default the instructor changes later reaches
everyone who has not chosen otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from queue_manager.core.bodies import parse_json
from queue_manager.core.errors import MalformedBody, SettingDefaultInvalid

# What a workshop starts with (written once into a new workshop's Redis; the instructor may
# change or unset each one after).
BUILT_IN: dict[str, object] = {
    # The first-run template browser opens over an empty graph while this is unset.
    "Comfy.TutorialCompleted": True,
    # Release notes and "update available" come from api.comfy.org, from every browser: a
    # workshop network may be offline or private, and the version is ours to choose anyway.
    "Comfy.Notification.ShowVersionUpdates": False,
    # The frontend's own defaults, written out: frontend 1.27.10 (CW_FRONTEND_DIR) sets them
    # while registering its navigation mode, before they are registered themselves, and throws
    # on every new participant's page unless they hold these values already.
    "Comfy.Canvas.LeftMouseClickBehavior": "panning",
    "Comfy.Canvas.MouseWheelScroll": "zoom",
}

MAX_ID_LENGTH = 200
MAX_VALUE_BYTES = 64 * 1024
MAX_DEFAULTS = 500


def check_id(setting_id: str) -> str:
    """A ComfyUI setting id (`Comfy.TutorialCompleted`, `pysssss.Locking`): printable ASCII
    without spaces, 1 to 200 characters."""
    if not 0 < len(setting_id) <= MAX_ID_LENGTH or not all("!" <= c <= "~" for c in setting_id):
        raise SettingDefaultInvalid(
            f"a setting id is 1 to {MAX_ID_LENGTH} printable characters without spaces, "
            f"like Comfy.TutorialCompleted (got {setting_id[:MAX_ID_LENGTH]!r})"
        )
    return setting_id


def encode_value(setting_id: str, value: object) -> str:
    """The value as stored: its JSON text (no NaN/Infinity: a page could not parse them)."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SettingDefaultInvalid(f"{setting_id}: not a JSON value ({exc})") from None
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise SettingDefaultInvalid(f"{setting_id}: the value is over {MAX_VALUE_BYTES} bytes")
    return text


def parse_value(setting_id: str, text: str) -> object:
    """A value an operator typed as JSON (`true`, `"dark"`, `{"a": 1}`)."""
    try:
        if text.strip():
            return parse_json(text.encode(), strict=True)
    except MalformedBody:
        pass
    raise SettingDefaultInvalid(
        f"{setting_id}: the value must be JSON, e.g. true, 42, '\"text\"' or '{{...}}'"
    )


def checked(defaults: Mapping[str, object]) -> dict[str, str]:
    """A whole set of defaults (the dashboard's), each checked: id -> JSON text."""
    if len(defaults) > MAX_DEFAULTS:
        raise SettingDefaultInvalid(f"at most {MAX_DEFAULTS} defaults")
    return {check_id(k): encode_value(k, v) for k, v in defaults.items()}


def decoded(stored: Mapping[str, str]) -> dict[str, object]:
    """Stored JSON texts back to values, by id (sorted: the same order everywhere)."""
    return {k: json.loads(stored[k]) for k in sorted(stored)}


def with_defaults(own: Mapping[str, object], defaults: Mapping[str, object]) -> dict[str, object]:
    """A participant's settings as their page reads them: theirs, and the defaults beneath."""
    return {**defaults, **own}
