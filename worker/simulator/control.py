"""The balanced simulator's control API under `/_sim/`, for tests that change it mid-run:

    GET    /_sim/replicas               -> {"replicas": [REPLICA, ...], "cold_starts": n,
                                            "warm": [index, ...]}
    POST   /_sim/replicas/{k}/kill      -> REPLICA   (stopped now: running prompt lost, cold)
    POST   /_sim/replicas/{k}/start     -> REPLICA   (once warm; a cold start if it was cold)
    GET    /_sim/faults                 -> FAULTS
    POST   /_sim/faults   FAULTS-PATCH  -> FAULTS    (400 on an unknown field or replica)
    DELETE /_sim/faults                 -> FAULTS    (all cleared)

REPLICA is {"index", "state": "cold"|"starting"|"warm"|"stopping", "url", "cold_starts",
"open", "running", "queue_remaining", "prompts": [prompt ids it accepted, every life]};
FAULTS and FAULTS-PATCH are described in `worker.simulator.faults`."""

from __future__ import annotations

import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from worker.simulator.faults import Faults, FaultsPatch, UnknownReplica, apply_patch
from worker.simulator.pool import ReplicaPool
from worker.simulator.replica import ReplicaStopped


class Control:
    def __init__(self, pool: ReplicaPool, faults: Faults) -> None:
        self.pool = pool
        self.faults = faults

    async def get_replicas(self, request: Request) -> Response:
        return JSONResponse(self.pool.report())

    async def kill(self, request: Request) -> Response:
        index = request.path_params["index"]
        if not 0 <= index < len(self.pool.replicas):
            return _no_replica(index)
        await self.pool[index].stop("killed")
        return JSONResponse(self.pool[index].report())

    async def start(self, request: Request) -> Response:
        index = request.path_params["index"]
        if not 0 <= index < len(self.pool.replicas):
            return _no_replica(index)
        try:
            await self.pool[index].ready()
        except ReplicaStopped as exc:
            return JSONResponse({"error": str(exc)}, 409)
        return JSONResponse(self.pool[index].report())

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.as_json())

    async def post_faults(self, request: Request) -> Response:
        try:
            patch = FaultsPatch.model_validate_json(await request.body())
            apply_patch(self.faults, patch, len(self.pool.replicas))
        except (pydantic.ValidationError, UnknownReplica) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(self.faults.as_json())

    async def clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return JSONResponse(self.faults.as_json())

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/_sim/replicas", self.get_replicas, methods=["GET"]),
            Route("/_sim/replicas/{index:int}/kill", self.kill, methods=["POST"]),
            Route("/_sim/replicas/{index:int}/start", self.start, methods=["POST"]),
            Route("/_sim/faults", self.get_faults, methods=["GET"]),
            Route("/_sim/faults", self.post_faults, methods=["POST"]),
            Route("/_sim/faults", self.clear_faults, methods=["DELETE"]),
        ]


def _no_replica(index: int) -> Response:
    return JSONResponse({"error": f"no replica {index}"}, 404)
