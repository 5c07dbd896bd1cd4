"""Which prompt the stand-in participants send: a UI-format file turned into the API prompt the
page would send, an API file as it is, the built-in graph, and a fresh seed per job."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from queue_manager.rehearsal.prompts import (
    WorkflowProblem,
    combo_options,
    default_workflow,
    fresh_seeds,
    graph_to_prompt,
    read_workflow,
)

DATA = Path(__file__).parents[2] / "data"
UI = (DATA / "workflows" / "txt2img-ui.json").read_bytes()
CATALOGUE: dict[str, Any] = json.loads(
    (
        Path(__file__).parents[3] / "queue_manager" / "comfy" / "data" / "object_info.json"
    ).read_text()
)
CATALOGUE["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = ["sd15.safetensors"]


def test_a_ui_file_becomes_the_prompt_the_page_sends() -> None:
    workflow = read_workflow("txt2img-ui.json", UI, CATALOGUE)
    prompt = workflow.prompt
    assert workflow.graph is not None and workflow.graph["nodes"]
    assert {k: v["class_type"] for k, v in prompt.items()} == {
        "3": "KSampler", "4": "CheckpointLoaderSimple", "5": "EmptyLatentImage",
        "6": "CLIPTextEncode", "7": "CLIPTextEncode", "8": "VAEDecode", "9": "SaveImage",
    }  # fmt: skip
    # widget values by name, the seed's "fixed" control value skipped, links as [id, slot]
    assert prompt["3"]["inputs"] == {
        "model": ["4", 0], "seed": 42, "steps": 4, "cfg": 8, "sampler_name": "euler",
        "scheduler": "normal", "positive": ["6", 0], "negative": ["7", 0],
        "latent_image": ["5", 0], "denoise": 1,
    }  # fmt: skip
    assert prompt["9"]["inputs"] == {"images": ["8", 0], "filename_prefix": "workshop"}
    assert prompt["6"]["inputs"] == {"text": "a workshop lighthouse at dusk", "clip": ["4", 1]}


def test_an_api_file_is_sent_as_it_is() -> None:
    prompt = {"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
    workflow = read_workflow("api.json", json.dumps(prompt).encode(), CATALOGUE)
    assert (workflow.prompt, workflow.graph) == (prompt, None)


def ui_graph() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(UI)
    return graph


def test_reroutes_are_followed_and_primitive_values_are_the_widgets_own() -> None:
    graph = ui_graph()
    # the checkpoint's CLIP reaches node 6 through a reroute (node 20)
    graph["nodes"].append({"id": 20, "type": "Reroute", "inputs": [{"name": "", "link": 100}]})
    graph["links"].append([100, 4, 1, 20, 0, "CLIP"])
    graph["links"] = [[101, 20, 0, 6, 0, "CLIP"] if lk[0] == 3 else lk for lk in graph["links"]]
    node6 = next(n for n in graph["nodes"] if n["id"] == 6)
    node6["inputs"] = [{"name": "clip", "link": 101}]
    # the sampler's steps come from a primitive node (the widget keeps the value)
    graph["nodes"].append({"id": 21, "type": "PrimitiveNode", "outputs": [{"links": [102]}]})
    graph["links"].append([102, 21, 0, 3, 4, "INT"])
    sampler = next(n for n in graph["nodes"] if n["id"] == 3)
    sampler["inputs"].append({"name": "steps", "link": 102, "widget": {"name": "steps"}})
    prompt = graph_to_prompt(graph, CATALOGUE, "g")
    assert prompt["6"]["inputs"]["clip"] == ["4", 1]
    assert prompt["3"]["inputs"]["steps"] == 4
    assert "20" not in prompt and "21" not in prompt


def test_muted_nodes_and_notes_do_not_run_and_links_to_them_go() -> None:
    graph = ui_graph()
    for node in graph["nodes"]:
        if node["id"] == 9:
            node["mode"] = 2  # muted SaveImage
    graph["nodes"].append({"id": 30, "type": "Note", "widgets_values": ["hello"]})
    prompt = graph_to_prompt(graph, CATALOGUE, "g")
    assert "9" not in prompt and "30" not in prompt


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda g: g["nodes"][0].update(mode=4), "bypassed"),
        (lambda g: g["nodes"][0].update(type="NoSuchNode"), "no node type NoSuchNode"),
        (lambda g: g.update(definitions={"subgraphs": [{"id": "x"}]}), "subgraphs"),
        (lambda g: g.update(extra={"groupNodes": {"G": {}}}), "group nodes"),
        (lambda g: g.update(nodes=[{"id": 1, "type": "Note"}]), "no node that runs"),
    ],
)
def test_what_cannot_be_turned_into_a_prompt_says_to_export_it(change: Any, says: str) -> None:
    graph = ui_graph()
    change(graph)
    with pytest.raises(WorkflowProblem, match=says):
        graph_to_prompt(graph, CATALOGUE, "lesson.json")


def test_a_file_that_is_no_workflow_is_refused_with_its_name() -> None:
    with pytest.raises(WorkflowProblem, match=r"^notes.json: not a ComfyUI workflow"):
        read_workflow("notes.json", b"[1, 2]", CATALOGUE)


def test_the_built_in_workflow_takes_the_first_checkpoint_the_gpus_offer() -> None:
    workflow = default_workflow(CATALOGUE, steps=4)
    classes = {v["class_type"] for v in workflow.prompt.values()}
    assert {"CheckpointLoaderSimple", "KSampler", "SaveImage"} <= classes
    assert workflow.prompt["4"]["inputs"]["ckpt_name"] == "sd15.safetensors"
    assert workflow.prompt["3"]["inputs"]["steps"] == 4


def test_without_a_checkpoint_the_built_in_workflow_says_to_give_one() -> None:
    bare = copy.deepcopy(CATALOGUE)
    bare["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] = []
    with pytest.raises(WorkflowProblem, match="--workflow FILE"):
        default_workflow(bare)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ([["a", "b"], {}], ["a", "b"]),
        (["COMBO", {"options": ["x"]}], ["x"]),
        (["INT", {"default": 1}], []),
    ],
)
def test_combo_options_in_both_shapes(spec: list[Any], expected: list[str]) -> None:
    catalogue = {"N": {"input": {"required": {"choice": spec}}}}
    assert combo_options(catalogue, "N", "choice") == expected
    assert combo_options(catalogue, "Missing", "choice") == []


def test_every_job_gets_fresh_seeds_and_the_original_stays() -> None:
    prompt = {
        "1": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 4}},
        "2": {"class_type": "RandomNoise", "inputs": {"noise_seed": 7}},
        "3": {"class_type": "X", "inputs": {"seed": ["1", 0]}},  # a link stays a link
    }
    rng = random.Random(1)
    first, second = fresh_seeds(prompt, rng), fresh_seeds(prompt, rng)
    assert first["1"]["inputs"]["seed"] != second["1"]["inputs"]["seed"]
    assert first["2"]["inputs"]["noise_seed"] != 7
    assert first["3"]["inputs"]["seed"] == ["1", 0]
    assert first["1"]["inputs"]["steps"] == 4
    assert prompt["1"]["inputs"]["seed"] == 42
