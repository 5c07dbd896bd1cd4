"""The gallery's pure rules: how a file is shown, what a workflow is at a glance, what every
page is told about the output shown to everyone."""

from __future__ import annotations

import pytest
from pydantic import JsonValue

from queue_manager.core.gallery import (
    Showcase,
    clean_caption,
    gallery_outputs,
    media_kind,
    summarize,
    ui_workflow,
)
from queue_manager.core.ids import JobId, UserId


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("image/png", "image"),
        ("image/webp", "image"),
        ("image/gif", "image"),
        ("IMAGE/JPEG", "image"),
        ("image/svg+xml", "other"),  # can carry script: never drawn inline
        ("video/mp4", "video"),
        ("video/webm", "video"),
        ("audio/flac", "audio"),
        ("audio/mpeg", "audio"),
        ("application/octet-stream", "other"),
        ("text/plain; charset=utf-8", "other"),
        ("", "other"),
    ],
)
def test_a_file_is_shown_by_its_content_type(content_type: str, kind: str) -> None:
    assert media_kind(content_type) == kind


def test_recorded_outputs_keep_their_place_and_odd_entries_are_left_out() -> None:
    recorded: list[dict[str, JsonValue]] = [
        {"filename": "a.png", "subfolder": "cw", "type": "output", "size": 10},
        {"filename": 7, "subfolder": ""},
        {"filename": "b.mp4"},
        {"filename": "c.png", "subfolder": None},
    ]
    types = {"a.png": "image/png", "b.mp4": "video/mp4"}
    shown = [(o.index, o.subfolder, o.filename, o.type, o.media, o.size)
             for o in gallery_outputs(recorded, types)]  # fmt: skip
    assert shown == [
        (0, "cw", "a.png", "output", "image", 10),
        (2, "", "b.mp4", "output", "video", 0),
    ]


@pytest.mark.parametrize(
    ("prompt", "nodes", "types", "text"),
    [
        ({}, 0, [], ""),
        (
            {
                "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly"}},
                "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "  a cat  "}},
                "10": {"class_type": "SaveImage", "inputs": {}},
            },
            3,
            ["CLIPTextEncode", "SaveImage"],
            "a cat",
        ),
        ({"1": {"class_type": "X", "inputs": {"text": ["2", 0]}}}, 1, ["X"], ""),  # a link
        ({"a": {"class_type": "X", "inputs": {"text": "t"}}, "b": "junk"}, 1, ["X"], "t"),
    ],
)
def test_a_workflow_is_summed_up_by_its_nodes_and_first_text(
    prompt: dict[str, JsonValue], nodes: int, types: list[str], text: str
) -> None:
    summary = summarize(prompt)
    assert (summary.nodes, summary.node_types, summary.text) == (nodes, types, text)


def test_the_ui_workflow_is_found_only_where_the_page_puts_it() -> None:
    graph: dict[str, JsonValue] = {"nodes": []}
    assert ui_workflow({"extra_pnginfo": {"workflow": graph}}) == graph
    assert ui_workflow({"extra_pnginfo": {"workflow": "x"}}) is None
    assert ui_workflow({"workflow": graph}) is None
    assert ui_workflow({}) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Look at\nthis\t one ", "Look at this one"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("x" * 300, "x" * 200),
        ("", ""),
    ],
)
def test_a_caption_is_one_short_clean_line(raw: str, clean: str) -> None:
    assert clean_caption(raw) == clean


@pytest.mark.parametrize(("with_author", "author"), [(True, "user007"), (False, None)])
def test_pages_are_told_no_job_no_file_and_the_author_only_if_chosen(
    with_author: bool, author: str | None
) -> None:
    shown = Showcase(
        id="s1", job=JobId("j1"), user=UserId("user007"), index=0, filename="secret-name.png",
        subfolder="private", type="output", media="image", caption="Nice", with_author=with_author,
        at=12.5, by=UserId("teacher"),
    )  # fmt: skip
    assert shown.public() == {
        "id": "s1",
        "media": "image",
        "caption": "Nice",
        "author": author,
        "at": 12.5,
    }
