"""ComfyUI 0.25.0's POST /prompt validation: captured exchanges replayed, then error by error."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest

from queue_manager.comfy.validation import (
    ServerCrash,
    ValidationResult,
    response_body,
    split_annotated_filename,
    submission_error,
    types_match,
    validate_prompt,
)
from tests.support.captures import capture, frontend_session
from tests.support.paths import SIMULATOR_OBJECT_INFO

OBJECT_INFO = SIMULATOR_OBJECT_INFO

# The capture server's input folder when the prompts were sent (get_internal_files_input, plus
# the subfolder upload of post_upload_image_subfolder). It had no model files at all.
CAPTURE_INPUT_FILES = frozenset(
    {
        "example.png",
        "broken.png",
        "capture_upload.png",
        "capture_upload (1).png",
        "capture_sub/sub_image.png",
    }
)
FRONTEND_INPUT_FILES = frozenset({"example.png", "broken.png", "frontend_upload.png"})

# Every post_prompt capture that reached the handler. Left out: post_prompt_error_not_json (the
# body is not JSON; the 500 comes from parsing it, before any validation) and
# post_prompt_origin_mismatch (the origin middleware answers 403 before the handler runs).
REPLAYED = [
    "post_prompt_cached.json",
    "post_prompt_error_bad_inputs.json",
    "post_prompt_error_link_to_missing_node.json",
    "post_prompt_error_loadimage_missing_file.json",
    "post_prompt_error_missing_class_type.json",
    "post_prompt_error_no_outputs.json",
    "post_prompt_error_no_prompt.json",
    "post_prompt_error_non_uuid_prompt_id.json",
    "post_prompt_error_type_mismatch.json",
    "post_prompt_error_unknown_class.json",
    "post_prompt_exec_failure_accepted.json",
    "post_prompt_explicit_number_and_prompt_id.json",
    "post_prompt_front_true.json",
    "post_prompt_loadimage.json",
    "post_prompt_partially_valid.json",
    "post_prompt_progress_text.json",
    "post_prompt_slow_1.json",
    "post_prompt_slow_2.json",
    "post_prompt_slow_3.json",
    "post_prompt_success.json",
    "post_prompt_without_client_id.json",
    "post_prompt_ws_images_legacy.json",
    "post_prompt_ws_images_metadata.json",
]
# ComfyUI walks a node's inputs as a Python set, so the order of one node's errors follows the
# server process's hash seed: this capture lists "crop" (missing) before "upscale_method". We
# list them in object_info's order. The errors themselves must match exactly.
ERRORS_IN_SET_ORDER = {"post_prompt_error_bad_inputs.json"}
# extra_info.traceback holds ComfyUI's own source lines (<COMFYUI_ROOT>/execution.py, line 921):
# we have none to give and send []. Everything else in the body must match exactly.
HAS_TRACEBACK = {"post_prompt_error_link_to_missing_node.json"}


@cache
def _object_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads(OBJECT_INFO.read_text())
    return info


def _check(
    prompt: object,
    files: frozenset[str] | None = None,
    targets: list[str] | None = None,
) -> ValidationResult:
    exists = None if files is None else files.__contains__
    return validate_prompt(
        prompt, _object_info(), input_file_exists=exists, partial_execution_targets=targets
    )


def _answer(body: dict[str, Any], files: frozenset[str], wanted: dict[str, Any]) -> dict[str, Any]:
    """Our status and body for one request; ids and numbers are the server's, taken as given."""
    refused = submission_error(body)
    if refused is not None:
        return {"status": 400, "body": refused}
    result = _check(body["prompt"], files, body.get("partial_execution_targets"))
    reply = response_body(result, wanted.get("prompt_id", ""), wanted.get("number", 0))
    return {"status": result.status, "body": reply}


def _in_comparable_order(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for entry in body["node_errors"].values():
        entry["errors"].sort(key=json.dumps)
    return body


def _without_tracebacks(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    for entry in body["node_errors"].values():
        for error in entry["errors"]:
            error["extra_info"]["traceback"] = []
    return body


def _prompt(**nodes: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """``_prompt(n1=("EmptyImage", {...}))`` -> {"1": {"class_type": ..., "inputs": ...}}."""
    return {
        key.removeprefix("n"): {"class_type": kind, "inputs": inputs}
        for key, (kind, inputs) in nodes.items()
    }


def _image(**overrides: Any) -> tuple[str, dict[str, Any]]:
    return ("EmptyImage", {"width": 8, "height": 8, "batch_size": 1, "color": 0, **overrides})


def _save(source: str, slot: int = 0) -> tuple[str, dict[str, Any]]:
    return ("SaveImage", {"images": [source, slot], "filename_prefix": "t"})


def _only_error(result: ValidationResult, node_id: str) -> dict[str, Any]:
    errors = result.node_errors[node_id]["errors"]
    assert len(errors) == 1, errors
    error: dict[str, Any] = errors[0]
    return error


# -- the captures -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", REPLAYED)
def test_each_captured_prompt_gets_the_answer_comfyui_gave(name: str) -> None:
    recorded = capture(name)
    wanted = {
        "status": recorded["response"]["status"],
        "body": recorded["response"]["body"]["json"],
    }
    got = _answer(recorded["request"]["json"], CAPTURE_INPUT_FILES, wanted["body"])
    assert got["status"] == wanted["status"]
    if name in HAS_TRACEBACK:
        assert got["body"] == _without_tracebacks(wanted["body"])
    elif name in ERRORS_IN_SET_ORDER:
        assert _in_comparable_order(got["body"]) == _in_comparable_order(wanted["body"])
        assert got["body"] != wanted["body"]  # only the order differs; see ERRORS_IN_SET_ORDER
    else:
        assert got["body"] == wanted["body"]


@pytest.mark.parametrize(
    "name", ["comfyui-0.25.0+frontend-1.45.15.json", "comfyui-0.25.0+frontend-1.58.1.json"]
)
def test_the_official_frontends_prompts_get_the_answers_comfyui_gave(name: str) -> None:
    session = frontend_session(name)
    exchanges = [
        r
        for r in session["api_requests_in_order"]
        if r["method"] == "POST" and r["path"] == "/api/prompt"
    ]
    assert len(exchanges) == 5  # empty graph, default graph, loaded, LoadImage, failing run
    for exchange in exchanges:
        got = _answer(exchange["post_json"], FRONTEND_INPUT_FILES, exchange["response_json"])
        assert got == {"status": exchange["status"], "body": exchange["response_json"]}


# -- the request around the prompt --------------------------------------------------------------


def test_a_request_without_a_prompt_is_refused_before_validation() -> None:
    refused = submission_error({"client_id": "c"})
    assert refused is not None
    assert refused["error"]["type"] == "no_prompt"
    assert refused["node_errors"] == {}


@pytest.mark.parametrize(
    ("prompt_id", "accepted"),
    [
        (None, True),
        ("0c0ffee0-0000-4000-8000-00000000ca11", True),
        ("0C0FFEE0-0000-4000-8000-00000000CA11", False),
        ("0c0ffee000004000800000000000ca11", False),
        ("{0c0ffee0-0000-4000-8000-00000000ca11}", False),
        ("capture-explicit-prompt-id-0001", False),
        ("", False),
        (5, False),
    ],
)
def test_only_canonical_lowercase_uuids_are_accepted_as_prompt_ids(
    prompt_id: object, accepted: bool
) -> None:
    refused = submission_error({"prompt": {}, "prompt_id": prompt_id})
    assert (refused is None) is accepted
    if refused is not None:
        assert refused["error"]["type"] == "invalid_prompt_id"


def test_an_accepted_prompt_answers_with_its_id_number_and_node_errors() -> None:
    result = _check(_prompt(n1=_image(), n2=_save("1")))
    assert result.status == 200
    assert response_body(result, "id", 3) == {"prompt_id": "id", "number": 3, "node_errors": {}}


def test_a_refused_prompt_answers_with_the_error_and_node_errors() -> None:
    result = _check({})
    assert result.status == 400
    assert response_body(result, "id", 3) == {"error": result.error, "node_errors": {}}


# -- the prompt as a whole ----------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [{}, [], "", _prompt(n1=_image())])
def test_a_prompt_without_output_nodes_has_no_outputs(prompt: object) -> None:
    result = _check(prompt)
    assert not result.ok
    assert result.error == {
        "type": "prompt_no_outputs",
        "message": "Prompt has no outputs",
        "details": "",
        "extra_info": {},
    }


def test_an_unknown_class_is_named_by_its_title_when_it_has_one() -> None:
    prompt = {"7": {"class_type": "Nope", "inputs": {}, "_meta": {"title": "My node"}}}
    assert _check(prompt).error == {
        "type": "missing_node_type",
        "message": "Node 'My node' not found. The custom node may not be installed.",
        "details": "Node ID '#7'",
        "extra_info": {"node_id": "7", "class_type": "Nope", "node_title": "My node"},
    }


def test_a_node_without_class_type_is_named_by_its_title_when_it_has_one() -> None:
    prompt = {"1": _prompt(n1=_image())["1"], "2": {"inputs": {}, "_meta": {"title": "Lost"}}}
    result = _check(prompt)
    assert result.error is not None
    assert result.error["message"] == (
        "Node 'Lost' has no class_type. The workflow may be corrupted or a custom node is missing."
    )
    assert result.error["extra_info"] == {"node_id": "2", "class_type": None, "node_title": "Lost"}


def test_the_first_unusable_node_in_prompt_order_is_the_one_reported() -> None:
    prompt = {"5": {"class_type": "Nope", "inputs": {}}, "1": {"inputs": {}}}
    assert _check(prompt).error == {
        "type": "missing_node_type",
        "message": "Node 'Nope' not found. The custom node may not be installed.",
        "details": "Node ID '#5'",
        "extra_info": {"node_id": "5", "class_type": "Nope", "node_title": "Nope"},
    }


@pytest.mark.parametrize(
    "prompt",
    [
        {"1": "SaveImage"},
        {"1": None},
        {"1": {"class_type": ["SaveImage"], "inputs": {}}},
        ["not", "an", "object"],
        None,
    ],
)
def test_shapes_that_crash_comfyui_raise_server_crash(prompt: object) -> None:
    with pytest.raises(ServerCrash):
        _check(prompt)


def test_one_valid_output_is_enough_and_the_failing_branch_is_reported() -> None:
    prompt = _prompt(n1=_image(), n2=_save("1"), n3=_image(width=0), n4=_save("3"))
    result = _check(prompt)
    assert result.ok
    assert result.outputs == ["2"]
    assert result.node_errors["3"]["dependent_outputs"] == ["4"]
    assert result.node_errors["3"]["class_type"] == "EmptyImage"


def test_outputs_to_execute_follow_the_prompt_order() -> None:
    prompt = _prompt(
        n1=_image(), n9=_save("1"), n3=_save("1"), n5=("PreviewImage", {"images": ["1", 0]})
    )
    assert _check(prompt).outputs == ["9", "3", "5"]


def test_when_every_output_fails_the_summary_joins_the_outputs_own_errors() -> None:
    prompt = _prompt(
        n1=("ImageToMask", {"image": ["2", 0], "channel": "red"}),
        n2=_image(),
        n3=_save("1"),
        n4=("SaveImage", {"images": ["2", 0]}),
    )
    result = _check(prompt)
    assert result.error is not None
    assert result.error["type"] == "prompt_outputs_failed_validation"
    assert result.error["details"] == (
        "Return type mismatch between linked nodes: "
        "images, received_type(MASK) mismatch input_type(IMAGE)\n"
        "Required input is missing: filename_prefix"
    )


def test_upstream_errors_are_listed_only_on_the_node_that_has_them() -> None:
    prompt = _prompt(n1=_image(width=-1), n2=("ImageInvert", {"image": ["1", 0]}), n3=_save("2"))
    result = _check(prompt)
    assert result.error is not None
    assert result.error["details"] == ""
    assert list(result.node_errors) == ["1"]
    assert result.node_errors["1"]["dependent_outputs"] == ["3"]


def test_a_node_with_errors_is_charged_to_every_output_that_fails_after_it_was_seen() -> None:
    # ComfyUI's quirk: once node 1 is known bad, each later failing output is appended to its
    # dependent_outputs, even output 4, which does not use it.
    prompt = _prompt(
        n1=_image(width=0),
        n2=_save("1"),
        n3=_image(height=0),
        n4=_save("3"),
    )
    result = _check(prompt)
    assert result.node_errors["1"]["dependent_outputs"] == ["2", "4"]
    assert result.node_errors["3"]["dependent_outputs"] == ["4"]


def test_partial_execution_targets_limit_the_outputs_checked_and_run() -> None:
    prompt = _prompt(n1=_image(), n2=_save("1"), n3=_image(width=0), n4=_save("3"))
    only_good = _check(prompt, targets=["2"])
    assert only_good.ok
    assert only_good.outputs == ["2"]
    assert only_good.node_errors == {}
    assert _check(prompt, targets=[]).error is not None
    assert _check(prompt, targets=["4"]).status == 400


def test_a_dependency_cycle_is_reported_on_each_node_in_it() -> None:
    prompt = _prompt(
        n1=("ImageInvert", {"image": ["2", 0]}),
        n2=("ImageInvert", {"image": ["1", 0]}),
        n3=_save("1"),
    )
    result = _check(prompt)
    cycle = "1 (ImageInvert) -> 2 (ImageInvert) -> 1 (ImageInvert)"
    for node_id in ("1", "2"):
        assert _only_error(result, node_id) == {
            "type": "dependency_cycle",
            "message": "Dependency cycle detected",
            "details": cycle,
            "extra_info": {"node_id": node_id, "cycle_nodes": ["1", "2"]},
        }


# -- widget values ----------------------------------------------------------------------------


def test_a_value_above_max_names_the_limit() -> None:
    result = _check(_prompt(n1=_image(width=20000), n2=_save("1")))
    assert _only_error(result, "1") == {
        "type": "value_bigger_than_max",
        "message": "Value 20000 bigger than max of 16384",
        "details": "width",
        "extra_info": {
            "input_name": "width",
            "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "received_value": 20000,
        },
    }


def test_a_value_below_min_names_the_limit() -> None:
    blur = ("ImageBlur", {"image": ["1", 0], "blur_radius": 3, "sigma": 0.05})
    result = _check(_prompt(n1=_image(), n2=blur, n3=_save("2")))
    error = _only_error(result, "2")
    assert error["type"] == "value_smaller_than_min"
    assert error["message"] == "Value 0.05 smaller than min of 0.1"
    assert error["details"] == "sigma"
    assert error["extra_info"]["received_value"] == 0.05


@pytest.mark.parametrize(
    ("node", "name", "value", "type_name", "reason"),
    [
        ("EmptyImage", "width", "abc", "INT", "invalid literal for int() with base 10: 'abc'"),
        ("EmptyImage", "width", "1.5", "INT", "invalid literal for int() with base 10: '1.5'"),
        (
            "EmptyImage",
            "width",
            None,
            "INT",
            "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'",
        ),
        ("ImageBlur", "sigma", "soft", "FLOAT", "could not convert string to float: 'soft'"),
    ],
)
def test_a_value_that_does_not_convert_is_an_invalid_input_type(
    node: str, name: str, value: Any, type_name: str, reason: str
) -> None:
    valid = {
        "EmptyImage": _image()[1],
        "ImageBlur": {"image": ["9", 0], "blur_radius": 3, "sigma": 1.0},
    }
    prompt = _prompt(n9=_image(), n1=(node, {**valid[node], name: value}), n2=_save("1"))
    error = _only_error(_check(prompt), "1")
    assert error["type"] == "invalid_input_type"
    assert error["message"] == f"Failed to convert an input value to a {type_name} value"
    assert error["details"] == f"{name}, {value}, {reason}"
    assert error["extra_info"]["exception_message"] == reason
    assert error["extra_info"]["received_value"] == value


def test_widget_values_are_queued_converted_and_the_callers_prompt_is_untouched() -> None:
    prompt = _prompt(n1=_image(width="64", height=7.9, batch_size={"__value__": 2}), n2=_save("1"))
    original = copy.deepcopy(prompt)
    result = _check(prompt)
    assert result.ok
    assert result.prompt["1"]["inputs"] == {"width": 64, "height": 7, "batch_size": 2, "color": 0}
    assert prompt == original


def test_a_value_outside_a_classic_combo_list_is_shown_with_the_list() -> None:
    scale = {"image": ["1", 0], "upscale_method": "foo", "width": 4, "height": 4, "crop": "center"}
    result = _check(_prompt(n1=_image(), n2=("ImageScale", scale), n3=_save("2")))
    assert _only_error(result, "2") == {
        "type": "value_not_in_list",
        "message": "Value not in list",
        "details": "upscale_method: 'foo' not in "
        "['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos']",
        "extra_info": {
            "input_name": "upscale_method",
            "input_config": [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"], {}],
            "received_value": "foo",
        },
    }


def test_a_value_outside_a_combo_style_options_list_is_not_in_list() -> None:
    flip = ("ImageFlip", {"image": ["1", 0], "flip_method": 3})
    error = _only_error(_check(_prompt(n1=_image(), n2=flip, n3=_save("2"))), "2")
    assert error["type"] == "value_not_in_list"
    assert (
        error["details"] == "flip_method: 3 not in ['x-axis: vertically', 'y-axis: horizontally']"
    )
    assert error["extra_info"]["input_config"][0] == "COMBO"


def test_a_long_combo_list_is_summarised_and_not_echoed_back() -> None:
    info = _object_info()["KSampler"]["input"]["required"]["sampler_name"]
    sampler = {"sampler_name": "nope"}
    prompt = _prompt(n1=("KSampler", sampler), n2=("PreviewAny", {"source": ["1", 0]}))
    errors = _check(prompt).node_errors["1"]["errors"]
    [combo] = [e for e in errors if e["type"] == "value_not_in_list"]
    assert combo["details"] == f"sampler_name: 'nope' not in (list of length {len(info[0])})"
    assert combo["extra_info"]["input_config"] is None


def test_a_missing_required_input_is_reported_and_a_missing_optional_one_is_not() -> None:
    composite = {"destination": ["1", 0], "source": ["1", 0], "x": 0, "resize_source": False}
    result = _check(_prompt(n1=_image(), n2=("ImageCompositeMasked", composite), n3=_save("2")))
    assert _only_error(result, "2") == {
        "type": "required_input_missing",
        "message": "Required input is missing",
        "details": "y",
        "extra_info": {"input_name": "y"},
    }


def test_an_optional_input_that_is_given_is_checked_like_any_other() -> None:
    composite = {
        "destination": ["1", 0],
        "source": ["1", 0],
        "x": 0,
        "y": 0,
        "resize_source": False,
        "mask": ["1", 0],
    }
    result = _check(_prompt(n1=_image(), n2=("ImageCompositeMasked", composite), n3=_save("2")))
    assert _only_error(result, "2")["type"] == "return_type_mismatch"


# -- links ----------------------------------------------------------------------------------------


def test_a_link_between_mismatched_types_is_a_return_type_mismatch() -> None:
    prompt = _prompt(n1=_image(), n2=("ImageToMask", {"image": ["1", 0], "channel": "red"}))
    prompt.update(_prompt(n3=_save("2")))
    assert _only_error(_check(prompt), "3")["extra_info"] == {
        "input_name": "images",
        "input_config": ["IMAGE", {"tooltip": "The images to save."}],
        "received_type": "MASK",
        "linked_node": ["2", 0],
    }


def test_an_any_type_input_takes_whatever_is_linked() -> None:
    prompt = _prompt(
        n1=_image(),
        n2=("GetImageSize", {"image": ["1", 0]}),
        n3=("PreviewAny", {"source": ["2", 0]}),
        n4=("PreviewAny", {"source": ["1", 0]}),
    )
    assert _check(prompt).outputs == ["3", "4"]


@pytest.mark.parametrize(
    ("received", "expected", "match"),
    [
        ("IMAGE", "IMAGE", True),
        ("MASK", "IMAGE", False),
        ("MASK", "IMAGE,MASK", True),
        ("IMAGE, MASK", "MASK", True),
        ("*", "LATENT", True),
        ("LATENT", "*", True),
        ("INT,*", "LATENT", True),
        ("COMFY_MATCHTYPE_V3", "IMAGE", True),
        (["a", "b"], "COMBO", True),
        ("COMBO", ["a", "b"], False),
        ("STRING", ["a", "b"], False),
    ],
)
def test_link_types_match_as_comfyui_matches_them(
    received: Any, expected: Any, match: bool
) -> None:
    assert types_match(received, expected) is match


def test_a_link_that_is_not_a_pair_is_a_bad_linked_input() -> None:
    result = _check(
        _prompt(n1=_image(), n2=("SaveImage", {"images": ["1"], "filename_prefix": "t"}))
    )
    assert _only_error(result, "2") == {
        "type": "bad_linked_input",
        "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
        "details": "images",
        "extra_info": {
            "input_name": "images",
            "input_config": ["IMAGE", {"tooltip": "The images to save."}],
            "received_value": ["1"],
        },
    }


def test_a_link_from_an_output_node_to_a_missing_node_fails_that_output() -> None:
    result = _check(_prompt(n3=_save("99")))
    assert _only_error(result, "3") == {
        "type": "exception_during_validation",
        "message": "Exception when validating node",
        "details": "'99'",
        "extra_info": {"exception_type": "KeyError", "traceback": []},
    }


def test_a_link_to_a_missing_node_further_up_is_charged_to_the_node_holding_it() -> None:
    # The exception is caught by node 3 and recorded on node 2, named after node 3's input.
    prompt = _prompt(n2=("ImageInvert", {"image": ["99", 0]}), n3=_save("2"))
    result = _check(prompt)
    assert list(result.node_errors) == ["2"]
    assert _only_error(result, "2") == {
        "type": "exception_during_inner_validation",
        "message": "Exception when validating inner node",
        "details": "'99'",
        "extra_info": {
            "input_name": "images",
            "input_config": ["IMAGE", {"tooltip": "The images to save."}],
            "exception_message": "'99'",
            "exception_type": "KeyError",
            "traceback": [],
            "linked_node": ["2", 0],
        },
    }


@pytest.mark.parametrize(
    ("slot", "details"),
    [
        (1, "tuple index out of range"),
        ("0", "tuple indices must be integers or slices, not str"),
        (0.0, "tuple indices must be integers or slices, not float"),
    ],
)
def test_a_slot_the_source_node_does_not_have_fails_with_pythons_words(
    slot: Any, details: str
) -> None:
    result = _check(_prompt(n1=_image(), n2=("SaveImage", {"images": ["1", slot]})))
    error = _only_error(result, "2")
    assert error["type"] == "exception_during_validation"
    assert error["details"] == details


# -- node-specific checks ---------------------------------------------------------------------


def _load(image: Any) -> dict[str, Any]:
    return _prompt(n1=("LoadImage", {"image": image}), n2=("PreviewImage", {"images": ["1", 0]}))


def test_loadimage_reports_a_file_that_does_not_exist_as_a_custom_validation_failure() -> None:
    result = _check(_load("gone.png"), files=frozenset({"example.png"}))
    assert _only_error(result, "1") == {
        "type": "custom_validation_failed",
        "message": "Custom validation failed for node",
        "details": "image - Invalid image file: gone.png",
        "extra_info": {"input_name": "image"},
    }


def test_loadimage_accepts_any_existing_file_even_one_its_list_does_not_show() -> None:
    assert _check(_load("sub/new.png"), files=frozenset({"sub/new.png"})).ok


def test_without_a_file_oracle_loadimage_trusts_its_object_info_list() -> None:
    assert _check(_load("example.png")).ok
    error = _only_error(_check(_load("gone.png")), "1")
    assert error["details"] == "image - Invalid image file: gone.png"


def test_the_file_oracle_gets_annotated_names_unchanged() -> None:
    asked: list[str] = []

    def exists(name: str) -> bool:
        asked.append(name)
        return True

    validate_prompt(_load("a.png [output]"), _object_info(), input_file_exists=exists)
    assert asked == ["a.png [output]"]


def test_loadimage_without_an_image_fails_inside_its_own_check_as_comfyui_does() -> None:
    result = _check(_prompt(n1=("LoadImage", {}), n2=("PreviewImage", {"images": ["1", 0]})))
    error = _only_error(result, "1")
    assert error["type"] == "exception_during_inner_validation"
    assert error["details"] == (
        "LoadImage.VALIDATE_INPUTS() missing 1 required positional argument: 'image'"
    )


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("a.png", ("a.png", "input")),
        ("sub/a.png [output]", ("sub/a.png", "output")),
        ("a.png [input]", ("a.png", "input")),
        ("a.png [temp]", ("a.png", "temp")),
    ],
)
def test_annotated_filenames_split_into_name_and_folder(name: str, split: tuple[str, str]) -> None:
    assert split_annotated_filename(name) == split


# -- V3 dynamic inputs ----------------------------------------------------------------------------


def test_an_autogrow_input_requires_its_first_slots_under_their_dotted_names() -> None:
    prompt = _prompt(n1=("BatchImagesNode", {}), n2=_save("1"))
    assert _only_error(_check(prompt), "1") == {
        "type": "required_input_missing",
        "message": "Required input is missing",
        "details": "image0",
        "extra_info": {"input_name": "images.image0"},
    }
    prompt["1"]["inputs"] = {"images.image0": ["3", 0], "images.image4": ["3", 0]}
    prompt.update(_prompt(n3=_image()))
    assert _check(prompt).ok


def test_a_dynamic_combo_checks_the_inputs_of_the_chosen_option() -> None:
    resize = {
        "input": ["1", 0],
        "resize_type": "scale by multiplier",
        "resize_type.multiplier": 100,
        "scale_method": "area",
    }
    prompt = _prompt(n1=_image(), n2=("ResizeImageMaskNode", resize), n3=_save("2"))
    error = _only_error(_check(prompt), "2")
    assert error["type"] == "value_bigger_than_max"
    assert error["details"] == "resize_type.multiplier"
    prompt["2"]["inputs"]["resize_type.multiplier"] = 2.0
    assert _check(prompt).ok


def test_a_dynamic_combo_with_an_unknown_choice_adds_and_checks_nothing() -> None:
    resize = {"input": ["1", 0], "resize_type": "sideways", "scale_method": "area"}
    assert _check(_prompt(n1=_image(), n2=("ResizeImageMaskNode", resize), n3=_save("2"))).ok
