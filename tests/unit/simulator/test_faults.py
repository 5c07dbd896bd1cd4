"""The balancer's faults: which accepted prompt loses its answer, what a history read gets,
and changes from the control API applied whole or not at all."""

from __future__ import annotations

import pytest

from worker.simulator.faults import (
    Faults,
    FaultsPatch,
    ReplicaFaults,
    UnknownReplica,
    apply_patch,
)


@pytest.mark.parametrize(
    ("faults", "accepted_by", "dropped"),
    [
        (Faults(), [0, 1, 0], [False, False, False]),
        (Faults(drop_prompt_responses=2), [0, 1, 0], [True, True, False]),
        (
            Faults(replicas={1: ReplicaFaults(drop_prompt_responses=1)}),
            [0, 1, 1],
            [False, True, False],
        ),
        # A replica's own drops are used before the pool-wide ones.
        (
            Faults(1, {0: ReplicaFaults(drop_prompt_responses=1)}),
            [0, 0, 0],
            [True, True, False],
        ),
    ],
)
def test_each_drop_loses_one_accepted_prompts_answer(
    faults: Faults, accepted_by: list[int], dropped: list[bool]
) -> None:
    assert [faults.take_prompt_drop(index) for index in accepted_by] == dropped


def test_a_history_fault_is_per_replica() -> None:
    faults = Faults(replicas={1: ReplicaFaults(history="hang")})

    assert [faults.history_on(k) for k in (0, 1, 2)] == ["answer", "hang", "answer"]


def test_a_patch_changes_only_what_it_names() -> None:
    faults = Faults(1, {0: ReplicaFaults(drop_prompt_responses=2, history="empty")})
    patch = FaultsPatch.model_validate({"replicas": {"0": {"history": "answer"}, "1": {}}})

    apply_patch(faults, patch, replica_count=2)

    assert faults.as_json() == {
        "drop_prompt_responses": 1,
        "replicas": {
            "0": {"drop_prompt_responses": 2, "history": "answer"},
            "1": {"drop_prompt_responses": 0, "history": "answer"},
        },
    }


def test_a_patch_naming_a_replica_that_is_not_there_changes_nothing() -> None:
    faults = Faults()
    patch = FaultsPatch.model_validate({"drop_prompt_responses": 3, "replicas": {"2": {}}})

    with pytest.raises(UnknownReplica):
        apply_patch(faults, patch, replica_count=2)
    assert faults == Faults()


def test_clearing_forgets_every_fault() -> None:
    faults = Faults(2, {0: ReplicaFaults(history="hang")})
    faults.clear()

    assert faults.as_json() == {"drop_prompt_responses": 0, "replicas": {}}
