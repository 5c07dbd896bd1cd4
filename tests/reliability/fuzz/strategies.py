"""Hypothesis strategies for what the API description does not describe: ComfyUI's `/prompt`
bodies and node graphs, file and folder names, multipart uploads, JSON of any shape.

Every run draws the same cases (`FUZZ`: derandomized, no example database), a fixed number
of them, with no per-case deadline (a slow shared machine must not fail the run)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.support.graphs import SAVE


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,  # the stack is meant to live across cases
        ],
    )


# Numbers JSON can carry that Python's float cannot (1e400), that a 64-bit int cannot, and
# the odd ones ComfyUI's own json.loads accepts (NaN, Infinity).
HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**4000)])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE_INTS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)

# Names: the ordinary, the unicode, and every trick a path can play.
_TRICKS = st.sampled_from(
    [
        "..",
        ".",
        "../x.png",
        "..\\x.png",
        "/etc/passwd",
        "a/../../x",
        "%2e%2e%2fx",
        "%252e%252e",
        "x\x00.png",
        "x\n.png",
        ".hidden",
        "con.png",
        "a" * 300,
        "ü/ñ/☃.png",
        "x.png/",
        "//x",
        "~/x",
        "user002/x.png",
        "../user002/x.png",
        "../../userdata/user002/comfy.settings.json",
        "workflows/a.json",
        "",
        " ",
        "x" * 80 + "/" + "y" * 80,
    ]
)
SEGMENT = st.text(alphabet=st.characters(codec="utf-8"), max_size=24)  # no lone surrogates
NAME = _TRICKS | SEGMENT | st.lists(SEGMENT | _TRICKS, min_size=1, max_size=4).map("/".join)
# Names a page would send: half the cases, so that the accepting paths are fuzzed too.
PLAIN = st.from_regex(r"[A-Za-z0-9ü _()-]{1,16}\.(png|jpg|webp|json)", fullmatch=True)
FOLDER = st.sampled_from(["", "a", "a/b", "clipspace", "ü ñ"])

# The nodes the bundled catalogue knows (a graph can then pass validation), and others.
CLASSES = st.sampled_from(
    [
        "EmptyImage",
        "SaveImage",
        "PreviewImage",
        "LoadImage",
        "KSampler",
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "VAEDecode",
        "EmptyLatentImage",
        "NoSuchNode",
        "",
    ]
)
NODE_ID = st.sampled_from(["1", "2", "3", "01", "-1", "", "9" * 30]) | st.text(max_size=6)
# Links: to nodes that exist and do not, to itself (cycles), with odd output indices.
LINK = st.tuples(NODE_ID | st.integers() | st.none(), st.integers() | st.text(max_size=3)).map(list)
INPUT = LINK | SCALARS | JSON | st.lists(LINK, max_size=3)
NODE = st.fixed_dictionaries(
    {"class_type": CLASSES | JSON},
    optional={
        "inputs": st.dictionaries(
            st.sampled_from(["images", "filename_prefix", "width", "height", "image", "seed"])
            | st.text(max_size=8),
            INPUT,
            max_size=5,
        )
        | JSON,
        "_meta": JSON,
    },
)
GRAPH = st.dictionaries(NODE_ID, NODE | JSON, max_size=6) | st.builds(
    lambda save, odd: {**save, **odd}, st.just(SAVE), st.dictionaries(NODE_ID, NODE, max_size=3)
)
PROMPT_BODY = st.fixed_dictionaries(
    {"prompt": GRAPH | JSON},
    optional={
        "client_id": st.text(max_size=40) | JSON,
        "prompt_id": st.uuids().map(str) | st.text(max_size=40) | JSON,
        "extra_data": JSON,
        "front": JSON,
        "number": st.integers() | HUGE_INTS | JSON,
        "partial_execution_targets": st.lists(NODE_ID, max_size=3) | JSON,
    },
)


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# Bytes a JSON reader meets: our shapes, anything, and what is not quite JSON.
RAW_JSON = (
    PROMPT_BODY.map(_encode)
    | JSON.map(_encode)
    | st.binary(max_size=200)
    | st.sampled_from(
        [
            b"",
            b"null",
            b'{"prompt": NaN}',
            b'{"prompt": {"1": Infinity}}',
            b'{"prompt": 1e400}',
            b"\xef\xbb\xbf{}",
            b'{"prompt": "\xff\xfe"}',
            b'{"prompt": {}, "prompt": []}',
            b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"prompt": {"1": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}}',
        ]
    )
)
