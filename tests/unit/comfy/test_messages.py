"""Our job events as the messages of ComfyUI's socket (`comfy.messages`): which page is told
what, in which order, in the shapes the recorded ComfyUI 0.25.0 sessions show."""

from __future__ import annotations

from typing import Any

import pytest

from queue_manager.comfy.frames import Preview, parse_frame
from queue_manager.comfy.messages import SocketView, done, executed, status
from queue_manager.core.ids import JobId, UserId
from queue_manager.store.events import Event
from tests.support.captures import capture

JOB = "0c0ffee0-0000-4000-8000-000000000001"
AT = 1_800_000_000.0  # seconds; the messages carry milliseconds
# A page of the user (its socket's sid), and what the job's `client_id` can be.
PAGE = "tab-a"
OTHER_PAGE = "tab-b"
NO_CLIENT = None
SAVED = {"filename": "t_00001_.png", "subfolder": "cw", "type": "output", "media": "images"}
FAILURE = {"type": "execution_error", "message": "boom", "node_id": "3", "node_type": "KSampler"}


def event(kind: str, n: int = 1, **data: Any) -> Event:
    """An event of the job; `kind` as the stream spells it ("job.started", ...)."""
    return Event(f"{n}-0", kind, AT + n, JobId(JOB), UserId("user001"), data=data)


def types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def recorded_keys() -> dict[str, set[tuple[str, ...]]]:
    """Per message type, the key sets of its `data` in the recorded sessions."""
    found: dict[str, set[tuple[str, ...]]] = {}
    for name in (
        "ws_run_success.json",
        "ws_run_execution_error.json",
        "ws_bystander_socket.json",
        "ws_queue_and_interrupt.json",
        "ws_run_binary_frames_legacy.json",
    ):
        for e in capture(name)["events"]:
            if e["kind"] == "text":
                found.setdefault(e["json"]["type"], set()).add(tuple(sorted(e["json"]["data"])))
    return found


# -- who is told what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "data", "client_id", "expected"),
    [
        ("job.started", {}, PAGE, ["execution_start", "execution_cached"]),
        ("job.started", {}, OTHER_PAGE, []),
        ("job.started", {}, NO_CLIENT, []),
        ("job.executing", {"node": "3"}, PAGE, ["progress_state", "executing"]),
        ("job.executing", {"node": "3"}, OTHER_PAGE, []),
        ("job.executing", {"node": "3"}, NO_CLIENT, []),
        ("job.progress", {"value": 2, "max": 8, "node": "3"}, PAGE, ["progress"]),
        ("job.progress", {"value": 2, "max": 8, "node": "3"}, OTHER_PAGE, []),
        # Without a client id ComfyUI broadcasts progress: every page of the user sees it.
        ("job.progress", {"value": 2, "max": 8, "node": "3"}, NO_CLIENT, ["progress"]),
        ("job.executed", {"node": "4", "files": [SAVED]}, PAGE, ["executed"]),
        ("job.executed", {"node": "4", "files": [SAVED]}, OTHER_PAGE, []),
        ("job.executed", {"node": "4", "files": [SAVED]}, NO_CLIENT, []),
        # Queue changes become `status`, previews binary frames: the socket makes those.
        ("job.queued", {"lane": "normal"}, PAGE, []),
        ("job.claimed", {}, PAGE, []),
        ("job.requeued", {}, PAGE, []),
        ("job.preview", {}, PAGE, []),
    ],
)
def test_an_event_is_told_to_the_page_that_submitted_the_job_and_no_other(
    kind: str, data: dict[str, Any], client_id: str | None, expected: list[str]
) -> None:
    view = SocketView(PAGE)
    assert types(view.translate(event(kind, **data), client_id)) == expected


@pytest.mark.parametrize(
    ("kind", "data", "client_id", "error", "expected"),
    [
        ("job.completed", {}, PAGE, None, ["execution_success"]),
        ("job.completed", {}, OTHER_PAGE, None, []),
        ("job.completed", {}, NO_CLIENT, None, []),
        ("job.failed", {}, PAGE, FAILURE, ["execution_error"]),
        ("job.failed", {}, OTHER_PAGE, FAILURE, []),
        ("job.failed", {}, PAGE, {"type": "execution_interrupted"}, ["execution_interrupted"]),
        ("job.cancelled", {"was": "running"}, PAGE, None, ["execution_interrupted"]),
        ("job.cancelled", {"was": "queued"}, PAGE, None, []),  # never ran: nothing to stop
        ("job.cancelled", {"was": "running"}, OTHER_PAGE, None, []),
        # A stopped run of no page is announced to every page of the user, as ComfyUI does.
        ("job.cancelled", {"was": "running"}, NO_CLIENT, None, ["execution_interrupted"]),
        ("job.cancelled", {"was": "queued"}, NO_CLIENT, None, []),
    ],
)
def test_how_a_job_ended_is_told_to_its_page(
    kind: str, data: dict[str, Any], client_id: str | None, error: Any, expected: list[str]
) -> None:
    view = SocketView(PAGE)
    assert types(view.finish(event(kind, **data), client_id, error)) == expected


# -- the order of a run ------------------------------------------------------------------------


def _collapsed(kinds: list[str]) -> list[str]:
    """ComfyUI sends a progress_state when a node ends and another when the next begins; we
    send one snapshot per node begun. Consecutive snapshots count as one, and the snapshot
    after the last node (all finished) is not sent by us."""
    out: list[str] = []
    for kind in kinds:
        if not (kind == "progress_state" and out and out[-1] == "progress_state"):
            out.append(kind)
    if out[-2:] == ["progress_state", "execution_success"]:
        out.pop(-2)
    return out


def test_the_recorded_run_comes_out_in_comfyuis_order() -> None:
    recorded = capture("ws_run_success.json")
    frames = [e["json"] for e in recorded["events"] if e["kind"] == "text"]
    start = types(frames).index("execution_start")
    end = types(frames).index("execution_success")
    view = SocketView(PAGE)
    ours = view.translate(event("job.started"), PAGE)
    for n, frame in enumerate(frames[start:end], start=2):
        if frame["type"] == "executing":
            ours += view.translate(event("job.executing", n, node=frame["data"]["node"]), PAGE)
        elif frame["type"] == "executed":
            data = {"node": frame["data"]["node"], "output": frame["data"]["output"]}
            ours += view.translate(event("job.executed", n, **data), PAGE)
    ours += view.finish(event("job.completed", 99), PAGE, None)
    assert types(ours) == _collapsed(types(frames[start : end + 1]))


def test_each_snapshot_lists_the_nodes_finished_and_the_one_running() -> None:
    view = SocketView(PAGE)
    states = []
    for n, node in enumerate(("1", "2", "5"), start=1):
        snapshot = view.translate(event("job.executing", n, node=node), PAGE)[0]
        nodes = snapshot["data"]["nodes"]
        states.append({k: (v["state"], v["value"]) for k, v in nodes.items()})
    assert states == [
        {"1": ("running", 0)},
        {"1": ("finished", 1), "2": ("running", 0)},
        {"1": ("finished", 1), "2": ("finished", 1), "5": ("running", 0)},
    ]


def test_progress_names_the_running_node_when_the_worker_does_not() -> None:
    view = SocketView(PAGE)
    view.translate(event("job.executing", node="7"), PAGE)
    [progress] = view.translate(event("job.progress", 2, value=3, max=20), PAGE)
    assert progress["data"] == {"value": 3, "max": 20, "prompt_id": JOB, "node": "7"}


# -- the shapes -----------------------------------------------------------------------------------


def _one_of_each() -> list[dict[str, Any]]:
    """Every message a page can get from `SocketView`, each built once."""
    view = SocketView(PAGE)
    out = view.translate(event("job.started"), PAGE)
    out += view.translate(event("job.executing", 2, node="1"), PAGE)
    out += view.translate(event("job.progress", 3, value=1, max=4), PAGE)
    out += view.translate(event("job.executed", 4, node="1", files=[SAVED]), PAGE)
    out += view.finish(event("job.completed", 5), PAGE, None)
    out += SocketView(PAGE).finish(event("job.failed", 6), PAGE, FAILURE)
    out += SocketView(PAGE).finish(event("job.cancelled", 7, was="running"), PAGE, None)
    return [*out, status(1), status(0, PAGE)]


@pytest.mark.parametrize("message", _one_of_each(), ids=lambda m: str(m["type"]))
def test_every_message_has_the_keys_comfyui_sends(message: dict[str, Any]) -> None:
    assert tuple(sorted(message["data"])) in recorded_keys()[message["type"]]


def test_the_end_marker_carries_what_comfyui_sends() -> None:
    marker = done(JOB)
    assert marker["type"] == "executing"
    assert marker["data"]["node"] is None and marker["data"]["prompt_id"] == JOB
    # ComfyUI's end marker has only these two keys; ours adds `display_node: None`, which
    # pages ignore (they read `node`).
    assert set(recorded_keys()["executing"]) >= {("node", "prompt_id")}
    assert {"node", "prompt_id"} <= set(marker["data"])


def test_executed_lists_the_stored_files_as_the_recorded_run_shows_them() -> None:
    recorded = next(
        e["json"]["data"]
        for e in capture("ws_run_success.json")["events"]
        if e["kind"] == "text"
        and e["json"]["type"] == "executed"
        and e["json"]["data"]["node"] == "4"
    )
    stored = {**recorded["output"]["images"][0], "media": "images", "size": 10, "node_id": "4"}
    ours = executed(recorded["prompt_id"], {"node": "4", "files": [stored], "output": {}})
    assert ours == {"type": "executed", "data": recorded}


def test_executed_keeps_text_output_beside_the_files() -> None:
    ours = executed(JOB, {"node": "3", "files": [SAVED], "output": {"text": ["40"]}})
    assert ours["data"]["output"] == {
        "text": ["40"],
        "images": [{"filename": "t_00001_.png", "subfolder": "cw", "type": "output"}],
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            FAILURE,
            {
                "node_id": "3",
                "node_type": "KSampler",
                "executed": ["1"],
                "exception_type": "execution_error",
            },
        ),
        # No node named: the one that was running; ComfyUI's own type from the details.
        (
            {
                "type": "execution_error",
                "message": "boom",
                "details": {"exception_type": "RuntimeError"},
            },
            {
                "node_id": "2",
                "node_type": None,
                "executed": ["1"],
                "exception_type": "RuntimeError",
            },
        ),
        (
            {"type": "agent_error", "message": "boom", "details": {"executed": ["1", "2"]}},
            {
                "node_id": "2",
                "node_type": None,
                "executed": ["1", "2"],
                "exception_type": "agent_error",
            },
        ),
    ],
)
def test_an_execution_error_names_the_node_and_what_ran_before(
    error: dict[str, Any], expected: dict[str, Any]
) -> None:
    view = SocketView(PAGE)
    view.translate(event("job.executing", 1, node="1"), PAGE)
    view.translate(event("job.executing", 2, node="2"), PAGE)
    [message] = view.finish(event("job.failed", 3), PAGE, error)
    assert {k: message["data"][k] for k in expected} == expected
    assert message["data"]["exception_message"] == "boom"
    assert message["data"]["timestamp"] == int((AT + 3) * 1000)


def test_an_interrupted_run_names_the_node_it_stopped_at() -> None:
    view = SocketView(PAGE)
    view.translate(event("job.executing", 1, node="1"), PAGE)
    view.translate(event("job.executing", 2, node="2"), PAGE)
    [message] = view.finish(event("job.cancelled", 3, was="running"), PAGE, None)
    assert message == {
        "type": "execution_interrupted",
        "data": {
            "prompt_id": JOB,
            "node_id": "2",
            "node_type": None,
            "executed": ["1"],
            "timestamp": int((AT + 3) * 1000),
        },
    }


@pytest.mark.parametrize(
    ("queue_remaining", "sid", "expected"),
    [
        (0, None, {"status": {"exec_info": {"queue_remaining": 0}}}),
        (3, "tab-a", {"status": {"exec_info": {"queue_remaining": 3}}, "sid": "tab-a"}),
    ],
)
def test_status_carries_the_queue_count_and_the_sid_only_when_given(
    queue_remaining: int, sid: str | None, expected: dict[str, Any]
) -> None:
    assert status(queue_remaining, sid) == {"type": "status", "data": expected}


# -- previews -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("negotiated", "client_id", "kind"),
    [
        (False, PAGE, 1),
        (True, PAGE, 4),
        (True, NO_CLIENT, 4),  # no client id: every page of the user, as ComfyUI broadcasts
        (False, OTHER_PAGE, None),
        (True, OTHER_PAGE, None),
    ],
)
def test_a_preview_goes_to_the_page_that_submitted_in_the_frame_kind_it_negotiated(
    negotiated: bool, client_id: str | None, kind: int | None
) -> None:
    view = SocketView(PAGE, preview_metadata=negotiated)
    view.translate(event("job.executing", node="3"), client_id)
    frame = view.preview(JOB, client_id, "image/jpeg", b"\xff\xd8jpeg")
    if kind is None:
        assert frame is None
        return
    assert frame is not None and int.from_bytes(frame[:4], "big") == kind
    parsed = parse_frame(frame)
    assert isinstance(parsed, Preview) and parsed.image == b"\xff\xd8jpeg"
    if kind == 4:
        assert parsed.meta["prompt_id"] == JOB
        assert parsed.meta["image_type"] == "image/jpeg"
        recorded = next(
            e["metadata_json"]
            for e in capture("ws_run_binary_frames_metadata.json")["events"]
            if e["kind"] == "binary"
        )
        assert parsed.meta.keys() == recorded.keys()
