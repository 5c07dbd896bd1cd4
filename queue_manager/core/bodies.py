"""Request bodies as JSON, read the one way every route reads them (pure).

Python's `json` recurses once per level of nesting, so `[[[[...]]]]` a few thousand levels deep
raises `RecursionError` from inside the parser: a body like that would be a 500 and a stack
dump in the log. Bodies are checked for depth before they are parsed.
"""

from __future__ import annotations

import json
import re

from queue_manager.core.errors import MalformedBody

# Deeper than any ComfyUI prompt, workflow or settings file (a workflow nests about 8 levels).
MAX_DEPTH = 64

# A JSON string, unrolled so `re` scans it without backtracking.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(raw: bytes, cap: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in a JSON text, counted up to `cap` + 1.

    Strings are cut out and everything but brackets dropped (both in C); then each pass takes
    out the innermost pairs, so the number of passes is the depth.
    """
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    brackets = brackets.replace(b"{", b"[").replace(b"}", b"]")
    depth = 0
    while b"[]" in brackets and depth <= cap:
        brackets = brackets.replace(b"[]", b"")
        depth += 1
    return depth


def parse_json(
    raw: bytes, *, empty: object = None, strict: bool = False, max_depth: int = MAX_DEPTH
) -> object:
    """The body's JSON value (`empty` for a blank body); MalformedBody with a message a person
    can act on otherwise. `strict` also refuses NaN and Infinity (Python writes them back, and
    a page's `JSON.parse` would then fail on the whole file)."""
    if not raw.strip():
        return empty
    if nesting_depth(raw, max_depth) > max_depth:
        raise MalformedBody(f"the request body nests deeper than {max_depth} levels")
    try:
        return json.loads(raw, parse_constant=_refuse_constant if strict else None)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedBody(f"the request body is not JSON ({exc})") from exc


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
