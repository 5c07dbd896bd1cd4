"""The rules of published workflows: names, formats, the Workshop folder, per-participant seeds."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from queue_manager.comfy.bundled import bundled_object_info
from queue_manager.core.errors import WorkflowInvalid
from queue_manager.core.workflows import (
    PublishedWorkflow,
    WorkflowFormat,
    for_participant,
    in_workshop_folder,
    name_of_file,
    own_copy_path,
    parse_workflow,
    published_name,
    seed_widget_indexes,
    workflow_name,
)

UI = (Path(__file__).parents[2] / "data" / "workflows" / "txt2img-ui.json").read_bytes()


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("Step 1.json", "Step 1"),
        ("  Step 1 - txt2img (SD1.5).JSON ", "Step 1 - txt2img (SD1.5)"),
        ("Café ünïcode", "Café ünïcode"),
        ("a.b.c", "a.b.c"),
    ],
)
def test_names_that_are_accepted(given: str, name: str) -> None:
    assert workflow_name(given) == name


@pytest.mark.parametrize(
    "given",
    ["", ".json", "..", ".hidden", "a/b", "..\\x", "../../etc/passwd", "x\x00y", "tab\there",
     "-dash", "x" * 81, "a%2fb", "a:b", "<script>"],
)  # fmt: skip
def test_names_that_are_refused(given: str) -> None:
    with pytest.raises(WorkflowInvalid):
        workflow_name(given)


def test_a_file_name_loses_its_folders() -> None:
    assert name_of_file("C:\\Users\\me\\lesson 1.json") == "lesson 1"
    assert name_of_file("/tmp/x/step.json") == "step"


def test_formats() -> None:
    assert parse_workflow(UI, 10**7)[0] is WorkflowFormat.UI
    api = {"1": {"class_type": "EmptyImage", "inputs": {}}}
    assert parse_workflow(json.dumps(api).encode(), 10**7)[0] is WorkflowFormat.API
    for bad in (b"", b"null", b"[]", b"{}", b'{"nodes": [{"id": 1}], "links": []}',
                b'{"1": {"inputs": {}}}', b'{"a": NaN}'):  # fmt: skip
        with pytest.raises(WorkflowInvalid):
            parse_workflow(bad, 10**7)
    with pytest.raises(WorkflowInvalid, match="larger"):
        parse_workflow(UI, 100)


def test_the_workshop_folder_and_where_a_save_goes() -> None:
    assert in_workshop_folder(PurePosixPath("workflows/Workshop/a.json"))
    assert in_workshop_folder(PurePosixPath("workflows/WORKSHOP"))
    assert not in_workshop_folder(PurePosixPath("workflows/Workshops/a.json"))
    assert not in_workshop_folder(PurePosixPath("Workshop/a.json"))
    assert own_copy_path(PurePosixPath("workflows/Workshop/a.json")) == PurePosixPath(
        "workflows/a.json"
    )
    assert own_copy_path(PurePosixPath("workflows/a.json")) is None
    assert published_name(PurePosixPath("workflows/Workshop/a b.json")) == "a b"
    assert published_name(PurePosixPath("workflows/Workshop/sub/a.json")) is None
    assert published_name(PurePosixPath("workflows/Workshop/a.txt")) is None


def test_where_the_seed_sits_in_a_nodes_widget_values() -> None:
    catalogue = bundled_object_info()
    assert seed_widget_indexes("KSampler", catalogue) == [0]
    # add_noise, noise_seed, (control), steps, ...
    assert seed_widget_indexes("KSamplerAdvanced", catalogue) == [1]
    assert seed_widget_indexes("SaveImage", catalogue) == []
    assert seed_widget_indexes("NoSuchNode", catalogue) == []


def test_each_participant_gets_their_own_stable_seed_only_where_asked() -> None:
    graph = json.loads(UI)
    plain = PublishedWorkflow("w", WorkflowFormat.UI, graph)
    catalogue = bundled_object_info()
    assert for_participant(plain, "user001", catalogue) is graph
    own = PublishedWorkflow("w", WorkflowFormat.UI, graph, randomize_seed=True)

    def seed(user: str, workflow: PublishedWorkflow = own) -> int:
        out = for_participant(workflow, user, catalogue)
        node = next(n for n in out["nodes"] if n["type"] == "KSampler")
        return int(node["widgets_values"][0])

    assert seed("user001") == seed("user001") != seed("user002")
    newer = PublishedWorkflow("w", WorkflowFormat.UI, graph, randomize_seed=True, version=2)
    assert seed("user001", newer) != seed("user001")
    assert graph["nodes"][4]["widgets_values"][0] == 42  # the published graph is untouched
