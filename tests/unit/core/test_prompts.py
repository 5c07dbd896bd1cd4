"""Structural checks of prompts: each bad shape gets a clear message."""

from __future__ import annotations

import pytest

from queue_manager.core.errors import PromptRejected
from queue_manager.core.prompts import parse_prompt


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be a JSON object"),
        ("x", "must be a JSON object"),
        ({}, "no nodes"),
        ({"1": "SaveImage"}, "node 1 is missing the class_type"),
        ({"1": {"inputs": {}}}, "node 1 is missing the class_type"),
        ({"1": {"class_type": 5}}, "node 1 is missing the class_type"),
        ({"1": {"class_type": "A", "inputs": []}}, "node 1 is malformed"),
        ({"": {"class_type": "A"}}, "node ids must be non-empty"),
        ({str(i): {"class_type": "A"} for i in range(6)}, "6 nodes; at most 5"),
    ],
)
def test_malformed_prompts_are_rejected_with_a_reason(raw: object, message: str) -> None:
    with pytest.raises(PromptRejected, match=message):
        parse_prompt(raw, max_nodes=5)


def test_extra_node_keys_are_kept_for_comfyui() -> None:
    nodes = parse_prompt(
        {"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}, "_meta": {"title": "S"}}},
        max_nodes=5,
    )
    assert dict(nodes["1"])["_meta"] == {"title": "S"}
    assert nodes["1"]["inputs"] == {"images": ["2", 0]}


def test_a_node_without_inputs_gets_empty_inputs() -> None:
    assert parse_prompt({"1": {"class_type": "EmptyImage"}}, max_nodes=5)["1"]["inputs"] == {}
