"""The baseline beside our fan-out in `benchmarks.fanout`: the plainest server that does the same
job, as in shared/bench-reference (ws_server_websockets.py), fed by the same Redis stream.

One XREAD loop on the event stream; each event is encoded once, in the admin socket's shape
(`{"type":"event","data":{...}}`), and handed to every connection with `websockets.broadcast`
(no per-socket task, queue or timeout; a slow client just has its frames dropped). Plain
asyncio, no compression, no authentication, no state frames: a floor, not a product.

Usage: python -m benchmarks.fanout_baseline --port P --redis-url URL --key cw:events
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

CONNS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    CONNS.add(ws)
    try:
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass
    finally:
        CONNS.discard(ws)


def frame(entry_id: str, f: dict[str, str]) -> str:
    data = {
        "id": entry_id,
        "type": f["t"],
        "at": float(f["at"]),
        "job": f.get("j") or None,
        "user": f.get("u") or None,
        "worker": f.get("w") or None,
        "data": json.loads(f.get("d") or "{}"),
    }
    return json.dumps({"type": "event", "data": data}, separators=(",", ":"))


async def relay(redis: Redis, key: str) -> None:
    newest = await redis.xrevrange(key, count=1)
    position = str(newest[0][0]) if newest else "0-0"
    while True:
        reply: Any = await redis.xread({key: position}, count=500, block=5000)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                position = entry_id
                broadcast(CONNS, frame(entry_id, fields))


async def main(a: argparse.Namespace) -> None:
    redis = Redis.from_url(a.redis_url, decode_responses=True, socket_connect_timeout=5)
    try:
        async with serve(
            handler, "127.0.0.1", a.port, backlog=2048, compression=None, max_queue=32
        ):
            print("READY", flush=True)
            await relay(redis, a.key)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--key", default="cw:events")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(ap.parse_args()))
