"""How ComfyUI's file requests are read (`comfy.view`), as tables: the recorded `/view`
requests of ComfyUI 0.25.0 give the statuses and headers, the rest follows its source."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from queue_manager.comfy.view import (
    FileRef,
    Preview,
    RangeNotSatisfiable,
    byte_range,
    content_disposition,
    content_type,
    http_date,
    is_overwrite,
    loader_ref,
    mask_original,
    newest_first,
    not_modified,
    numbered_names,
    rendering,
    split_annotation,
    upload_target,
    view_target,
)
from queue_manager.core.errors import UnsafePath
from tests.support.captures import capture

VIEW_CAPTURES = [
    "get_view_annotated_filename.json",
    "get_view_bad_type.json",
    "get_view_channel_a.json",
    "get_view_default_type_output.json",
    "get_view_dotdot_filename.json",
    "get_view_input_subfolder.json",
    "get_view_no_filename.json",
    "get_view_output_png.json",
    "get_view_preview_jpeg.json",
    "get_view_preview_webp.json",
    "get_view_subfolder_traversal.json",
    "get_view_temp_preview.json",
]


def _headers(recorded: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in recorded["response"].get("headers", [])}


@pytest.mark.parametrize("name", VIEW_CAPTURES)
def test_a_recorded_view_request_names_the_file_or_fails_with_comfyuis_status(name: str) -> None:
    recorded = capture(name)
    query, status = recorded["request"].get("query") or {}, recorded["response"]["status"]
    if status >= 400:
        with pytest.raises(UnsafePath) as refused:
            view_target(query)
        assert refused.value.status == status
        return
    ref = view_target(query)
    headers = _headers(recorded)
    assert content_disposition(ref.name) == headers["content-disposition"]
    form = rendering(query)
    media = form.media_type if isinstance(form, Preview) else content_type(ref.name)
    assert media == headers["content-type"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"filename": "x.png"}, FileRef("output", PurePosixPath("x.png"))),
        ({"filename": "x.png", "type": "temp"}, FileRef("temp", PurePosixPath("x.png"))),
        (
            {"filename": "x.png [input]", "type": "output", "subfolder": "a/b"},
            FileRef("input", PurePosixPath("a/b/x.png")),  # the annotation wins over `type`
        ),
        ({"filename": "dir/x.png"}, FileRef("output", PurePosixPath("x.png"))),  # last part
    ],
)
def test_view_reads_type_subfolder_and_annotation_as_comfyui(
    query: dict[str, str], expected: FileRef
) -> None:
    assert view_target(query) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x.png [output]", ("x.png", "output")),
        ("x.png [input]", ("x.png", "input")),
        ("x.png [temp]", ("x.png", "temp")),
        ("x.png[temp]", ("x.pn", "temp")),  # one character more than the tag, as ComfyUI
        ("x.png [other]", ("x.png [other]", None)),
        ("x.png", ("x.png", None)),
    ],
)
def test_a_folder_annotation_is_split_off_the_name(
    name: str, expected: tuple[str, str | None]
) -> None:
    assert split_annotation(name) == expected


@pytest.mark.parametrize(
    ("type_field", "subfolder", "filename", "expected"),
    [
        (None, "", "cat.png", FileRef("input", PurePosixPath("cat.png"))),
        ("temp", "pets", "cat.png", FileRef("temp", PurePosixPath("pets/cat.png"))),
        (None, "", "", 400),
        ("bogus", "", "cat.png", 400),
        (None, "../..", "cat.png", 400),  # /view would say 403; uploads always say 400
        (None, "", "../cat.png", 400),
    ],
)
def test_an_upload_goes_to_the_input_folder_unless_told_and_never_leaves_it(
    type_field: str | None, subfolder: str, filename: str, expected: FileRef | int
) -> None:
    if isinstance(expected, int):
        with pytest.raises(UnsafePath) as refused:
            upload_target(type_field, subfolder, filename)
        assert refused.value.status == expected
    else:
        assert upload_target(type_field, subfolder, filename) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"filename": "x.png"}, FileRef("output", PurePosixPath("x.png"))),
        (
            {"filename": "x.png", "type": "input", "subfolder": "s"},
            FileRef("input", PurePosixPath("s/x.png")),
        ),
        ({"filename": "x.png [temp]", "type": "input"}, FileRef("temp", PurePosixPath("x.png"))),
        ({"subfolder": "s"}, 400),
        ("x.png", 400),
        ({"filename": "../x.png"}, 400),
    ],
)
def test_a_masks_original_is_named_like_a_view_request(
    ref: object, expected: FileRef | int
) -> None:
    if isinstance(expected, int):
        with pytest.raises(UnsafePath) as refused:
            mask_original(ref)
        assert refused.value.status == expected
    else:
        assert mask_original(ref) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cat.png", FileRef("input", PurePosixPath("cat.png"))),
        ("pets/cat.png", FileRef("input", PurePosixPath("pets/cat.png"))),
        ("cat.png [output]", FileRef("output", PurePosixPath("cat.png"))),
        ("../cat.png", None),
    ],
)
def test_a_loader_value_names_a_file_or_nothing_when_unsafe(
    value: str, expected: FileRef | None
) -> None:
    assert loader_ref(value) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, "file"),
        ({"channel": "rgb"}, "rgb"),
        ({"channel": "a"}, "a"),
        ({"channel": "rgba"}, "file"),
        ({"preview": "jpeg;80"}, Preview("jpeg", 80, to_rgb=True)),
        ({"preview": "webp;50"}, Preview("webp", 50, to_rgb=False)),
        ({"preview": "webp"}, Preview("webp", 90, to_rgb=False)),
        ({"preview": "gif;10"}, Preview("webp", 10, to_rgb=False)),
        ({"preview": "jpeg;80", "channel": "a"}, Preview("webp", 80, to_rgb=False)),
        ({"preview": "webp;80", "channel": "rgb"}, Preview("webp", 80, to_rgb=True)),
        ({"preview": "jpeg;500"}, Preview("jpeg", 100, to_rgb=True)),  # at most 100
        ({"preview": "jpeg;5000"}, Preview("jpeg", 90, to_rgb=True)),  # not a quality: 90
    ],
)
def test_the_answers_form_follows_preview_then_channel(
    query: dict[str, str], expected: object
) -> None:
    assert rendering(query) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x.png", "image/png"),
        ("x.webp", "image/webp"),
        ("x.safetensors", "application/safetensors"),
        ("x.html", "application/octet-stream"),  # script-capable: always a download
        ("x.svg", "application/octet-stream"),
        ("x.unknown-ext", "application/octet-stream"),
    ],
)
def test_the_content_type_comes_from_the_extension(name: str, expected: str) -> None:
    assert content_type(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("x.png", 'filename="x.png"'),
        ("ça.png", "filename=\"_a.png\"; filename*=UTF-8''%C3%A7a.png"),
        ('a"b.png', "filename=\"a_b.png\"; filename*=UTF-8''a%22b.png"),
    ],
)
def test_content_disposition_names_the_file_safely(name: str, expected: str) -> None:
    assert content_disposition(name) == expected


def test_an_upload_tries_numbered_names_in_turn() -> None:
    names = numbered_names("cat.png")
    assert [next(names) for _ in range(3)] == ["cat.png", "cat (1).png", "cat (2).png"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("false", False), ("True", False), (None, False)],
)
def test_only_true_or_1_overwrites(value: str | None, expected: bool) -> None:
    assert is_overwrite(value) is expected


def test_listings_are_newest_first_and_ties_by_name() -> None:
    assert newest_first([(1, "b"), (3, "c"), (1, "a"), (2, "d")]) == ["c", "d", "a", "b"]


TAG, MTIME, SIZE = '"5f-2a"', 1_800_000_000.0, 42


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, False),
        ({"if-none-match": TAG}, True),
        ({"if-none-match": f'W/{TAG}, "other"'}, True),
        ({"if-none-match": "*"}, True),
        ({"if-none-match": '"other"'}, False),
        ({"if-modified-since": http_date(MTIME)}, True),
        ({"if-modified-since": http_date(MTIME - 60)}, False),
        ({"if-modified-since": "not a date"}, False),
        ({"if-none-match": '"other"', "if-modified-since": http_date(MTIME)}, False),
    ],
)
def test_a_cached_copy_is_answered_304_when_it_still_matches(
    headers: dict[str, str], expected: bool
) -> None:
    assert not_modified(headers, TAG, MTIME) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"range": "bytes=0-15"}, (0, 16)),  # get_view_output_range: bytes 0-15/664
        ({"range": "bytes=10-"}, (10, SIZE)),
        ({"range": "bytes=-5"}, (SIZE - 5, SIZE)),
        ({"range": "bytes=-100"}, (0, SIZE)),
        ({"range": "bytes=40-100"}, (40, SIZE)),
        ({"range": "bytes=0-15", "if-range": TAG}, (0, 16)),
        ({"range": "bytes=0-15", "if-range": '"changed"'}, None),
        ({"range": "bytes=0-15", "if-range": http_date(MTIME - 60)}, None),
        ({"range": "bytes=50-"}, RangeNotSatisfiable),
        ({"range": "bytes=9-3"}, RangeNotSatisfiable),
        ({"range": "bytes=-"}, RangeNotSatisfiable),
        ({"range": "bytes=0-1,4-5"}, RangeNotSatisfiable),
        ({"range": "lines=1-2"}, RangeNotSatisfiable),
    ],
)
def test_a_range_is_read_as_aiohttp_reads_it(headers: dict[str, str], expected: object) -> None:
    if expected is RangeNotSatisfiable:
        with pytest.raises(RangeNotSatisfiable):
            byte_range(headers, TAG, MTIME, SIZE)
    else:
        assert byte_range(headers, TAG, MTIME, SIZE) == expected


def test_the_recorded_range_request_gets_the_recorded_range() -> None:
    recorded = capture("get_view_output_range.json")
    size = int(_headers(recorded)["content-range"].rsplit("/", 1)[1])
    start, end = byte_range(
        {k.lower(): v for k, v in recorded["request"]["headers"].items()}, TAG, MTIME, size
    ) or (0, size)
    assert f"bytes {start}-{end - 1}/{size}" == _headers(recorded)["content-range"]
