"""What a workflow file needs from a GPU, in either format, and what a catalogue lacks of it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from queue_manager.core.workflow_needs import (
    FRONTEND_NODE_TYPES,
    Needs,
    describe,
    missing,
    needs_of,
    offered_models,
)
from tests.support.graphs import sampler
from tests.support.paths import DATA

SUBGRAPH_ID = "7aad998c-49e7-433f-bfb9-b1ac2680aa9e"


def needs(nodes: set[str], models: set[str] = frozenset()) -> Needs:  # type: ignore[assignment]
    return Needs(frozenset(nodes), frozenset(models))


def node(type_: str, *widgets: Any, mode: int = 0, **properties: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "type": type_,
        "mode": mode,
        "widgets_values": list(widgets),
        "properties": properties,
    }


def ui(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"nodes": list(nodes), "links": [], "version": 0.4, **extra}


def test_a_real_template_needs_its_subgraphs_nodes_and_models() -> None:
    graph = json.loads((DATA / "workflow-templates" / "video_kandinsky5_t2v.json").read_text())
    assert needs_of(graph) == needs(
        {
            "VAELoader", "CLIPTextEncode", "ModelSamplingSD3", "SaveVideo", "VAEDecode",
            "UNETLoader", "DualCLIPLoader", "Kandinsky5ImageToVideo", "CreateVideo", "KSampler",
        },
        {
            "hunyuan_video_vae_bf16.safetensors", "clip_l.safetensors",
            "kandinsky5lite_t2v_sft_5s.safetensors", "qwen_2.5_vl_7b_fp8_scaled.safetensors",
        },
    )  # fmt: skip


def test_api_format_needs_are_the_prompts_requirements() -> None:
    got = needs_of(sampler(4))
    assert got.node_types == {
        "CheckpointLoaderSimple", "EmptyLatentImage", "CLIPTextEncode", "KSampler",
        "VAEDecode", "SaveImage",
    }  # fmt: skip
    assert got.models == {"v1-5-pruned-emaonly-fp16.safetensors"}


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        # Frontend-only nodes need nothing; a note's prose is not a model.
        (
            ui(node("Note", "get sd_xl_base_1.0.safetensors"), node("MarkdownNote", "x.ckpt"),
               node("Reroute"), node("PrimitiveNode", "picked.safetensors"),
               node("SaveImage", "out")),
            needs({"SaveImage"}, {"picked.safetensors"}),
        ),
        # Download hints count, widget values of every model-ish ending count, files do not.
        (
            ui(node("VAELoader", "ae.sft", models=[{"name": "ae.sft", "directory": "vae"}]),
               node("UNETLoader", "m.gguf", "default",
                    models=[{"name": "unet.safetensors"}, {"name": "  "}, "junk", {"url": "u"}]),
               node("LoadImage", "cat.png", "image"), node("UpscaleModelLoader", "4x.PTH")),
            needs({"VAELoader", "UNETLoader", "LoadImage", "UpscaleModelLoader"},
                  {"ae.sft", "m.gguf", "unet.safetensors", "4x.PTH"}),
        ),
        # Muted (2) and bypassed (4) nodes are drawn (their type counts) but never run.
        (
            ui(node("LoraLoader", "a.safetensors", mode=4), node("LoraLoader", "b.pt", mode=2),
               node("LoraLoader", "c.bin")),
            needs({"LoraLoader"}, {"c.bin"}),
        ),
        # Widget values that are dicts or nested lists (custom nodes) are read too.
        (
            ui(node("VHS_Loader", {"model": "SD1.5\\v1.ckpt", "opts": [["x.onnx"]]})),
            needs({"VHS_Loader"}, {"SD1.5\\v1.ckpt", "x.onnx"}),
        ),
        # Legacy group nodes: the group's type is no node type, its inner nodes are.
        (
            ui(node("workflow>Loaders"), node("workflow/Old"),
               extra={"groupNodes": {
                   "Loaders": {"nodes": [node("CheckpointLoaderSimple", "g.ckpt")]},
                   "Old": "junk"}}),
            needs({"CheckpointLoaderSimple"}, {"g.ckpt"}),
        ),
        # Subgraphs, nested ones too: the instance's type is the subgraph id, not a node type.
        (
            ui(node("sg-1", "promoted.safetensors"),
               definitions={"subgraphs": [
                   {"id": "sg-1", "nodes": [node("sg-2"), node("KSampler", 1, "fixed")],
                    "definitions": {"subgraphs": [
                        {"id": "sg-2", "nodes": [node("CLIPLoader", "t5.safetensors")]}]}},
                   {"nodes": [node("NoIdSubgraphNode")]}, "junk"]}),
            needs({"KSampler", "CLIPLoader"}, {"promoted.safetensors", "t5.safetensors"}),
        ),
        # Whatever is not shaped like a node is skipped.
        (
            {"nodes": ["junk", {"type": 3}, {"type": ""}, {"no": "type"}, node("SaveImage")]},
            needs({"SaveImage"}),
        ),
        ({"1": {"class_type": "A", "inputs": {"m": "a.pt"}}, "2": "junk", "3": {"class_type": 1}},
         needs({"A"}, {"a.pt"})),
        ({}, needs(set())),
    ],
)  # fmt: skip
def test_needs_of(graph: dict[str, Any], expected: Needs) -> None:
    assert needs_of(graph) == expected


def test_a_graph_that_is_no_mapping_needs_nothing() -> None:
    assert needs_of([1, 2]) == needs(set())  # type: ignore[arg-type]


def test_the_frontends_own_node_types_are_listed() -> None:
    assert {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"} <= FRONTEND_NODE_TYPES


CATALOGUE: dict[str, Any] = {
    "CheckpointLoaderSimple": {
        "input": {"required": {"ckpt_name": [["SDXL/sd_xl_base.safetensors", "v1-5.ckpt"], {}]}}
    },
    "LoraLoader": {
        "input": {
            "required": {"lora_name": ["COMBO", {"options": ["style.safetensors", "none"]}]},
            "optional": {"strength": ["FLOAT", {"default": 1.0}]},
        }
    },
    "CustomLoader": {"input": {"optional": {"file": [["custom\\thing.gguf"]]}}},
    "Broken": {"input": {"required": "junk", "optional": {"x": [], "y": "junk"}}},
    "Odd": "junk",
    "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}},
}


def test_offered_models_are_the_model_files_in_every_combo() -> None:
    assert offered_models(CATALOGUE) == {
        "SDXL/sd_xl_base.safetensors", "v1-5.ckpt", "style.safetensors", "custom/thing.gguf",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("wanted", "gap"),
    [
        (needs({"SaveImage"}, {"v1-5.ckpt"}), needs(set())),
        # The same file in another subfolder, or with Windows separators, is on the GPU.
        (needs(set(), {"sd_xl_base.safetensors", "custom/thing.gguf"}), needs(set())),
        (needs(set(), {"SDXL\\sd_xl_base.safetensors"}), needs(set())),
        (needs({"KSampler", "SaveImage", "Note"}, {"flux.safetensors", "none"}),
         needs({"KSampler"}, {"flux.safetensors", "none"})),
    ],
)  # fmt: skip
def test_missing(wanted: Needs, gap: Needs) -> None:
    assert missing(wanted, CATALOGUE) == gap


def test_an_empty_catalogue_misses_everything_but_frontend_nodes() -> None:
    assert missing(needs({"A", "Reroute"}, {"m.pt"}), {}) == needs({"A"}, {"m.pt"})


def test_describe_names_the_gap() -> None:
    assert describe(needs({"B", "A"}, {"m.pt"})) == "node types A, B; models m.pt"
    assert describe(needs(set(), {"y.pt", "x.pt"})) == "models x.pt, y.pt"
    assert describe(needs(set())) == ""
