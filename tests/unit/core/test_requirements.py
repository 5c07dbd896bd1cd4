"""What a prompt needs, and the reasons shown when no GPU has it."""

from __future__ import annotations

import pytest

from queue_manager.core.ids import WorkerId
from queue_manager.core.requirements import (
    Capabilities,
    Requirements,
    can_run,
    hold_reason,
    missing,
    requirements_of,
)


def req(nodes: set[str], models: set[str] = frozenset()) -> Requirements:  # type: ignore[assignment]
    return Requirements(frozenset(nodes), frozenset(models))


def test_requirements_are_node_types_and_model_file_names() -> None:
    prompt = {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "SD1.5/v1-5-pruned-emaonly.safetensors"},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat.pt", "clip": ["4", 1]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI"}},
        "10": {"class_type": "LoadImage", "inputs": {"image": "cat.png"}},
    }
    r = requirements_of(prompt)
    assert r.node_types == {"CheckpointLoaderSimple", "CLIPTextEncode", "SaveImage", "LoadImage"}
    # A prompt text that happens to end like a model file is still counted: better to hold a
    # job for a readable reason than to send it to a GPU that fails it.
    assert r.models == {"SD1.5/v1-5-pruned-emaonly.safetensors", "a cat.pt"}


def test_signature_is_stable_and_distinguishes_needs() -> None:
    assert req({"A", "B"}).signature == req({"B", "A"}).signature
    assert req({"A"}).signature != req({"A"}, {"m.ckpt"}).signature


@pytest.mark.parametrize(
    ("needs", "caps", "runnable"),
    [
        (req({"A"}), Capabilities(frozenset({"A", "B"})), True),
        (req({"A", "C"}), Capabilities(frozenset({"A", "B"})), False),
        (req({"A"}, {"m.safetensors"}), Capabilities(frozenset({"A"})), True),  # unreported
        (req({"A"}, {"m.safetensors"}), Capabilities(frozenset({"A"}), frozenset()), False),
        (
            req({"A"}, {"m.safetensors"}),
            Capabilities(frozenset({"A"}), frozenset({"m.safetensors"})),
            True,
        ),
    ],
)
def test_can_run(needs: Requirements, caps: Capabilities, runnable: bool) -> None:
    assert can_run(needs, caps) is runnable


@pytest.mark.parametrize(
    ("gaps", "reason"),
    [
        ({}, "waiting for a GPU worker to connect"),
        ({WorkerId("w"): req(set())}, None),
        ({WorkerId("w"): req({"X"})}, "held: no connected GPU has node types X"),
        (
            {WorkerId("w1"): req({"X", "Y"}), WorkerId("w2"): req(set(), {"m.ckpt"})},
            "held: no connected GPU has models m.ckpt",
        ),
        (
            {WorkerId("w1"): req({"X"}, {"m.ckpt"})},
            "held: no connected GPU has node types X and models m.ckpt",
        ),
    ],
)
def test_hold_reason_names_what_the_closest_worker_lacks(
    gaps: dict[WorkerId, Requirements], reason: str | None
) -> None:
    assert hold_reason(gaps) == reason


def test_missing_ignores_models_of_a_worker_that_does_not_report_them() -> None:
    assert missing(req({"A"}, {"m.ckpt"}), Capabilities(frozenset())) == req({"A"})
