"""The node catalogue a page sees (`comfy.object_info`): the workers' catalogues merged, and
every file chooser listing the participant's own files."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from queue_manager.comfy.object_info import for_user, merge, upload_inputs


def loader(*files: str, combo_form: bool = False) -> dict[str, Any]:
    """A checkpoint loader offering `files`, in the classic or the `COMBO` spec form."""
    spec: list[Any] = ["COMBO", {"options": list(files)}] if combo_form else [list(files), {}]
    return {"input": {"required": {"ckpt_name": spec}}, "output": ["MODEL"]}


def load_image(*files: str) -> dict[str, Any]:
    return {"input": {"required": {"image": [list(files), {"image_upload": True}]}}}


def ckpts(catalogue: dict[str, Any], node: str = "Loader") -> list[Any]:
    spec = catalogue[node]["input"]["required"]["ckpt_name"]
    return list(spec[1]["options"] if spec[0] == "COMBO" else spec[0])


@pytest.mark.parametrize("combo_form", [False, True])
@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        ([["a.safetensors"]], ["a.safetensors"]),
        ([["a.safetensors"], ["a.safetensors"]], ["a.safetensors"]),
        (
            [["a.safetensors", "b.safetensors"], ["c.safetensors", "a.safetensors"]],
            ["a.safetensors", "b.safetensors", "c.safetensors"],
        ),  # first seen first
        ([["b.safetensors"], [], ["a.safetensors"]], ["b.safetensors", "a.safetensors"]),
    ],
)
def test_several_workers_offer_the_union_of_their_model_files(
    workers: list[list[str]], expected: list[str], combo_form: bool
) -> None:
    catalogues = [{"Loader": loader(*files, combo_form=combo_form)} for files in workers]
    before = copy.deepcopy(catalogues)
    assert ckpts(merge(catalogues)) == expected
    assert catalogues == before  # the workers' own catalogues are left as they were


def test_a_node_type_any_worker_has_is_in_the_merged_catalogue() -> None:
    merged = merge([{"Loader": loader("a")}, {"Loader": loader("a"), "Only2": loader("x")}])
    assert sorted(merged) == ["Loader", "Only2"]


def test_every_file_chooser_input_is_found_with_its_flag() -> None:
    catalogue = {
        "LoadImage": load_image("x.png"),
        "LoadVideo": {"input": {"required": {"file": [[], {"video_upload": True}]}}},
        "Loader": loader("a.safetensors"),
        "Odd": {"input": {"required": "not a mapping"}},
    }
    assert upload_inputs(catalogue) == [
        ("LoadImage", "required", "image", "image_upload"),
        ("LoadVideo", "required", "file", "video_upload"),
    ]


def test_a_participant_sees_their_own_files_and_the_shared_catalogue_stays_as_it_was() -> None:
    catalogue = {"LoadImage": load_image("worker.png"), "Loader": loader("a.safetensors")}
    before = copy.deepcopy(catalogue)
    mine = for_user(catalogue, upload_inputs(catalogue), {"image_upload": ["cat.png", "dog.png"]})
    assert mine["LoadImage"]["input"]["required"]["image"][0] == ["cat.png", "dog.png"]
    assert mine["Loader"] is catalogue["Loader"]  # untouched nodes are shared, not copied
    assert catalogue == before
    nothing = for_user(catalogue, upload_inputs(catalogue), {})
    assert nothing["LoadImage"]["input"]["required"]["image"][0] == []
