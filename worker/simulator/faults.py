"""Faults a balanced simulator injects, for the queue manager's tests: the next accepted
`POST /prompt` answers lost (pool-wide or on one replica), and a replica's `/history` that
never knows anything (`empty`) or never answers (`hang`). Pure: the balancer consults them,
the control API changes them.

The control API's JSON (`POST /_sim/faults`; fields left out keep their value):

    {"drop_prompt_responses": 1,
     "replicas": {"0": {"drop_prompt_responses": 2, "history": "answer" | "empty" | "hang"}}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HistoryFault = Literal["answer", "empty", "hang"]


@dataclass
class ReplicaFaults:
    drop_prompt_responses: int = 0  # the next N prompts it accepts get no answer
    history: HistoryFault = "answer"


@dataclass
class Faults:
    drop_prompt_responses: int = 0  # the next N prompts accepted by any replica get no answer
    replicas: dict[int, ReplicaFaults] = field(default_factory=dict)

    def of(self, index: int) -> ReplicaFaults:
        return self.replicas.setdefault(index, ReplicaFaults())

    def take_prompt_drop(self, index: int) -> bool:
        """Whether the prompt replica `index` just accepted loses its answer (using one up)."""
        own = self.of(index)
        if own.drop_prompt_responses > 0:
            own.drop_prompt_responses -= 1
            return True
        if self.drop_prompt_responses > 0:
            self.drop_prompt_responses -= 1
            return True
        return False

    def clear(self) -> None:
        self.drop_prompt_responses = 0
        self.replicas.clear()

    def history_on(self, index: int) -> HistoryFault:
        return self.replicas[index].history if index in self.replicas else "answer"

    def as_json(self) -> dict[str, Any]:
        return {
            "drop_prompt_responses": self.drop_prompt_responses,
            "replicas": {
                str(k): {"drop_prompt_responses": f.drop_prompt_responses, "history": f.history}
                for k, f in sorted(self.replicas.items())
            },
        }


class _ReplicaPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drop_prompt_responses: int | None = Field(default=None, ge=0)
    history: HistoryFault | None = None


class FaultsPatch(BaseModel):
    """A change to the faults, as `POST /_sim/faults` carries it."""

    model_config = ConfigDict(extra="forbid")
    drop_prompt_responses: int | None = Field(default=None, ge=0)
    replicas: dict[int, _ReplicaPatch] = Field(default_factory=dict)


class UnknownReplica(ValueError):
    def __init__(self, index: int) -> None:
        super().__init__(f"no replica {index}")
        self.index = index


def apply_patch(faults: Faults, patch: FaultsPatch, replica_count: int) -> None:
    """Change `faults` as `patch` says (nothing at all if it names a replica that is not)."""
    for index in patch.replicas:
        if not 0 <= index < replica_count:
            raise UnknownReplica(index)
    if patch.drop_prompt_responses is not None:
        faults.drop_prompt_responses = patch.drop_prompt_responses
    for index, change in patch.replicas.items():
        own = faults.of(index)
        if change.drop_prompt_responses is not None:
            own.drop_prompt_responses = change.drop_prompt_responses
        if change.history is not None:
            own.history = change.history
