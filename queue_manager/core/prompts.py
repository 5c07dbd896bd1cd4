"""Structural checks of an API-format prompt, before it becomes a job.

ComfyUI's own validation against `object_info` (unknown node types, combo values, links) comes
on top of this; here we only make sure the thing is a graph we can store, route and pass on.
Plain checks, no model building: this runs on every Run click, on the dispatch path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from queue_manager.core.errors import PromptRejected
from queue_manager.core.jobs import ApiPrompt, PromptNode


def parse_prompt(raw: object, *, max_nodes: int) -> ApiPrompt:
    """The prompt, checked, or PromptRejected with a message a participant can act on."""
    if not isinstance(raw, Mapping):
        raise PromptRejected("the prompt must be a JSON object of nodes")
    if not raw:
        raise PromptRejected("the prompt has no nodes")
    if len(raw) > max_nodes:
        raise PromptRejected(f"the prompt has {len(raw)} nodes; at most {max_nodes} are allowed")
    for node_id, node in raw.items():
        if not isinstance(node_id, str) or not node_id:
            raise PromptRejected("node ids must be non-empty strings")
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            raise PromptRejected(f"node {node_id} is missing the class_type property")
        inputs = node.get("inputs", {})
        if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
            raise PromptRejected(f"node {node_id} is malformed: inputs must be an object")
    return {
        node_id: cast("PromptNode", {**node, "inputs": node.get("inputs", {})})
        for node_id, node in raw.items()
    }
