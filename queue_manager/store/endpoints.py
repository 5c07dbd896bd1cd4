"""Push endpoints' configurations in Redis: one hash, name -> JSON. Header values (API keys)
are stored as given, since the queue manager must send them; Redis is never published, and
nothing reads them back out but the dispatcher (`EndpointConfig.shown` hides them)."""

from __future__ import annotations

import json
from typing import cast

from queue_manager.core.endpoint_status import EndpointPhase, EndpointStatus
from queue_manager.core.endpoints import EndpointConfig, EndpointKind
from queue_manager.store.scripts import ScriptRunner


class EndpointStore:
    def __init__(self, runner: ScriptRunner) -> None:
        redis, keys = runner.redis, runner.keys
        self._run = runner.run
        self._redis = redis
        self._keys = keys
        self._key = keys.endpoints
        self._hold = redis.register_script(_HOLD)
        self._let_go = redis.register_script(_LET_GO)

    async def put(self, config: EndpointConfig) -> bool:
        """Add or replace; True if it is new."""
        return bool(await self._redis.hset(self._key, config.name, _encode(config)))

    async def remove(self, name: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:  # both keys, one step
            pipe.hdel(self._key, name)
            pipe.delete(self._keys.endpoint_status(name))
            removed, _ = await pipe.execute()
        return bool(removed)

    async def all(self) -> list[EndpointConfig]:
        raw = cast("dict[str, str]", await self._redis.hgetall(self._key))
        return [_decode(text) for _, text in sorted(raw.items())]

    # -- how each endpoint is doing (written by the process dispatching to it) ----------------

    async def set_status(self, status: EndpointStatus) -> None:
        await self._run(
            "endpoint_status",
            status.name,
            *("phase", status.phase.value, "reason", status.reason, "since", repr(status.since)),
            *("running", status.running, "cold_starts", json.dumps(list(status.cold_starts))),
        )

    async def status(self, name: str) -> EndpointStatus:
        fields = cast("dict[str, str]", await self._redis.hgetall(self._keys.endpoint_status(name)))
        if not fields:
            return EndpointStatus(name)
        return EndpointStatus(
            name=name,
            phase=EndpointPhase(fields.get("phase", "cold")),
            reason=fields.get("reason", ""),
            since=float(fields.get("since") or 0),
            running=int(fields.get("running") or 0),
            cold_starts=tuple(float(s) for s in json.loads(fields.get("cold_starts") or "[]")),
        )

    # -- which process dispatches to an endpoint (one at a time, whatever the replicas) ------

    async def hold(self, name: str, owner: str, seconds: float) -> bool:
        """Take or keep the endpoint for `owner` for `seconds`; False if another holds it."""
        held = await self._hold(
            keys=[self._keys.endpoint_owner(name)], args=[owner, int(seconds * 1000)]
        )
        return bool(held)

    async def let_go(self, name: str, owner: str) -> None:
        await self._let_go(keys=[self._keys.endpoint_owner(name)], args=[owner])


# Take the key if free, or renew it if `owner` already has it (one step: no one else slips in).
_HOLD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_LET_GO = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def _encode(c: EndpointConfig) -> str:
    return json.dumps(
        {
            "name": c.name,
            "url": c.url,
            "kind": c.kind.value,
            "slots": c.slots,
            "headers": [list(h) for h in c.headers],
            "outputs": c.outputs,
            "inputs": c.inputs,
            "cold_start_timeout": c.cold_start_timeout,
            "job_timeout": c.job_timeout,
            "prefetch": c.prefetch,
        }
    )


def _decode(text: str) -> EndpointConfig:
    d = json.loads(text)
    return EndpointConfig(
        name=d["name"],
        url=d["url"],
        kind=EndpointKind(d["kind"]),
        slots=int(d["slots"]),
        headers=tuple((str(n), str(v)) for n, v in d["headers"]),
        outputs=d["outputs"],
        inputs=d["inputs"],
        cold_start_timeout=float(d["cold_start_timeout"]),
        job_timeout=float(d["job_timeout"]),
        prefetch=int(d.get("prefetch", 0)),  # configured before prefetch existed: none
    )
