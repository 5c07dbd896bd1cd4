"""worker-comfyui's contract as pure functions: the job input it accepts, the pictures of a
history entry it returns, and the shape of its answer."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from worker.simulator.runpod.results import (
    InputImage,
    JobInput,
    Outcome,
    OutputRef,
    decode_image,
    outcome,
    parse_input,
    saved_images,
    validation_failure,
)

RAW = base64.b64encode(b"\x89PNG-bytes").decode()


@pytest.mark.parametrize("text", [RAW, f"data:image/png;base64,{RAW}"])
def test_an_image_is_base64_with_or_without_a_data_uri_prefix(text: str) -> None:
    assert decode_image(text) == b"\x89PNG-bytes"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ({"workflow": {"1": {}}}, JobInput({"1": {}}, [])),
        (
            {"workflow": {}, "images": [{"name": "a.png", "image": RAW}]},
            JobInput({}, [InputImage("a.png", b"\x89PNG-bytes")]),
        ),
        ('{"workflow": {"1": {}}}', JobInput({"1": {}}, [])),
        ("{not json", "Invalid JSON format in input"),
        (None, "Please provide input"),
        ({"images": []}, "Missing 'workflow' parameter"),
        ({"workflow": []}, "Missing 'workflow' parameter"),
        (
            {"workflow": {}, "images": [{"image": RAW}]},
            "'images' must be a list of objects with 'name' and 'image' keys",
        ),
        (
            {"workflow": {}, "images": "a.png"},
            "'images' must be a list of objects with 'name' and 'image' keys",
        ),
    ],
)
def test_the_job_input_is_parsed_or_refused_with_the_handlers_words(
    raw: Any, parsed: JobInput | str
) -> None:
    assert parse_input(raw) == parsed


def test_an_image_that_is_not_base64_is_refused() -> None:
    parsed = parse_input({"workflow": {}, "images": [{"name": "a.png", "image": "not base64!"}]})

    assert isinstance(parsed, str) and parsed.startswith("Invalid base64 image data")


def test_the_saved_pictures_of_every_output_node_are_returned_but_not_temp_ones() -> None:
    entry = {
        "outputs": {
            "9": {"images": [{"filename": "a.png", "subfolder": "s", "type": "output"}]},
            "10": {"images": [{"filename": "p.png", "subfolder": "", "type": "temp"}]},
            "11": {"text": ["not a picture"]},
            "12": {"images": [{"filename": "b.png", "subfolder": "", "type": "output"}]},
        }
    }

    assert saved_images(entry) == [
        OutputRef("a.png", "s", "output"),
        OutputRef("b.png", "", "output"),
    ]


@pytest.mark.parametrize(
    ("images", "errors", "expected"),
    [
        ([{"filename": "a"}], [], Outcome({"images": [{"filename": "a"}]})),
        ([{"filename": "a"}], ["w"], Outcome({"images": [{"filename": "a"}], "errors": ["w"]})),
        ([], ["e"], Outcome({"details": ["e"]}, "Job processing failed")),
        ([], [], Outcome({"images": [], "status": "success_no_images"})),
    ],
)
def test_the_answer_has_worker_comfyuis_shape(
    images: list[dict[str, str]], errors: list[str], expected: Outcome
) -> None:
    assert outcome(images, errors) == expected


def test_a_refused_workflow_names_its_node_errors() -> None:
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed"},
        "node_errors": {"3": {"errors": [{"type": "value_not_in_list", "details": "ckpt: x"}]}},
    }

    assert validation_failure(body).splitlines() == [
        "Workflow validation failed:",
        "• Prompt outputs failed",
        "• Node 3 (value_not_in_list): ckpt: x",
    ]
