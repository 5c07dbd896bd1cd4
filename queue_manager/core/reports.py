"""What a worker's report changes on the job, besides announcing it (pure).

The event stream carries every report to the live pages; the job hash keeps what a page needs
after the fact: when ComfyUI started, the node running now, the latest progress, and each
node's non-file UI output (PreviewAny's text), which history shows later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import JsonValue

from queue_manager.core.events import EventType
from queue_manager.core.jobs import UI_FIELD


def stored_fields(kind: str, data: Mapping[str, JsonValue], now: float) -> dict[str, str]:
    if kind == EventType.JOB_STARTED:
        return {"started_at": repr(now), "node": "", "phase": ""}
    if kind == EventType.JOB_EXECUTING and isinstance(data.get("node"), str):
        return {"node": str(data["node"])}
    if kind == EventType.JOB_PHASE and isinstance(data.get("detail"), str):
        return {"phase": str(data["detail"])[:200]}
    if kind == EventType.JOB_PROGRESS:
        return {"progress": json.dumps(dict(data))}
    if kind == EventType.JOB_EXECUTED:
        node, output = data.get("node"), data.get("output")
        if isinstance(node, str) and isinstance(output, Mapping) and output:
            return {f"{UI_FIELD}{node}": json.dumps(dict(output))}
    return {}
