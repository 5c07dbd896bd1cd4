"""The worker API as a GPU with a real token holding a real job of user001's: output uploads
with any names and bytes, reports, heartbeats, previews, the job's ending, file downloads, and
the joining bodies (registration, node catalogue). Never a 5xx; a refused request changes no
file; an accepted output lands only in its job's user's folder, with its bytes; no download
ever hands out another user's file."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queue_manager.cli.redis_server import RedisServer
from tests.reliability.fuzz.conftest import ACCOUNTS
from tests.reliability.fuzz.effects import changes, files, no_server_error, outside
from tests.reliability.fuzz.stack import Stack, running_stack
from tests.reliability.fuzz.strategies import FOLDER, JSON, NAME, PLAIN, fuzz
from tests.reliability.fuzz.tally import answered, count
from tests.reliability.fuzz.test_prompt_bodies import register
from tests.support.graphs import SAVE

EXAMPLES = 150
SECRET = b"user002-secret-9f41"  # user002's, and the operator's: never downloaded
FOLDERS = {"output": "outputs", "temp": "temp"}
REFUSALS = {400, 403, 404, 409, 413, 422}  # 403: a download that tries to leave the folder


class HeldJob:
    """user001's job, claimed by the GPU; claimed anew once a case has ended it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.gpu = stack.worker()
        self._job: dict[str, Any] | None = None
        # Outputs stored for the held attempt, by the name the worker reported: the same name
        # again is a retry (its answer was lost) and gets the first file's answer back.
        self.stored: dict[str, dict[str, Any]] = {}

    def current(self) -> dict[str, Any]:
        if self._job is None:
            with self.stack.client("user001") as alice:
                r = alice.post("/user001/api/prompt", json={"prompt": SAVE})
                assert r.status_code == 200, r.text
            r = self.gpu.post("/worker/v1/claim", params={"wait": 0})
            assert r.status_code == 200, r.text
            self._job = r.json()
        return self._job

    def ended(self) -> None:
        self._job = None
        self.stored = {}


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose GPU holds its lease for the whole run (no reaper in the way), with
    user002's and the operator's files on disk to be asked for."""
    tmp = tmp_path_factory.mktemp("worker")
    long = {"lease_seconds": 3600.0, "worker_timeout_seconds": 3600.0}
    with running_stack(redis_server, tmp, ACCOUNTS, **long) as running:
        for path in ("inputs/user002/s.png", "outputs/user002/s.png", "s.png"):
            (running.data_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (running.data_dir / path).write_bytes(SECRET)
        register(running)
        yield running


@pytest.fixture(scope="module")
def held(stack: Stack) -> Iterator[HeldJob]:
    job = HeldJob(stack)
    yield job
    job.gpu.close()


# Mostly what an agent sends (`mostly`: three draws in four), so that most cases get past the
# request's shape to the job and the disk; the rest anything.
ATTEMPT = st.sampled_from([None] * 9 + [0, -1, 2**31, 2**53 + 1, 10**400])  # None: the real one
MEDIA = st.sampled_from(["images", "gifs", "3d"])
MEDIA = st.one_of(MEDIA, MEDIA, MEDIA, st.sampled_from(["x" * 65, "a/b", ""]) | st.text(max_size=8))


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(usual, usual, usual, other)


OUTPUTS = st.fixed_dictionaries(
    {
        "attempt": ATTEMPT,
        "filename": PLAIN | NAME,
        "subfolder": FOLDER | NAME,
        "type": mostly(st.sampled_from(list(FOLDERS)), st.sampled_from(["input", ""])),
        "node_id": st.sampled_from(["2", ""]) | st.text(max_size=6),
        "media": MEDIA,
    }
)


@given(output=OUTPUTS, body=st.binary(max_size=300))
@fuzz(EXAMPLES)
def test_an_output_lands_in_its_jobs_user_folder_or_nowhere(
    stack: Stack, held: HeldJob, output: dict[str, Any], body: bytes
) -> None:
    job = held.current()
    params = {
        **output,
        "attempt": job["attempt"] if output["attempt"] is None else output["attempt"],
    }
    before = files(stack)
    count("worker output upload")
    r = held.gpu.put(f"/worker/v1/jobs/{job['id']}/outputs", params=params, content=body)
    answered("worker output upload", r.status_code)
    no_server_error(r, params)
    changed = changes(before, files(stack))
    if r.status_code != 201:
        assert r.status_code in REFUSALS, r.text
        assert changed == set(), (r.status_code, changed)
        return
    stored = r.json()
    reported = f"{params['type']}/{params['subfolder']}/{params['filename']}"
    if reported in held.stored:  # a retry: the first answer, no second file
        assert stored == held.stored[reported]
        assert changed == set(), changed
        return
    held.stored[reported] = stored
    folder = FOLDERS[stored["type"]]
    assert outside(changed, "user001", [folder]) == set(), changed
    path = stack.data_dir / folder / "user001" / stored["subfolder"] / stored["filename"]
    assert path.read_bytes() == body
    assert stored["size"] == len(body)


@st.composite
def job_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A call about the held job: (method, route under the job, params, JSON body or bytes)."""
    attempt = draw(ATTEMPT)
    body: Any
    route = draw(st.sampled_from(["events", "events", "events", "heartbeat", "preview",
                                  "files", "release", "complete", "fail"]))  # fmt: skip
    if route == "events":
        kinds = st.sampled_from(["job.started", "job.executing", "job.progress",
                                 "job.executed", "job.phase", "job.completed", ""])  # fmt: skip
        body = {
            "attempt": attempt,
            "type": draw(mostly(kinds, JSON)),
            "data": draw(mostly(_DATA, JSON)),
        }
    elif route == "heartbeat":
        body = draw(st.fixed_dictionaries({}, optional={"job_id": JSON, "attempt": JSON}) | JSON)
        body = {"job_id": None, "attempt": attempt, **body} if isinstance(body, dict) else body
    elif route == "preview":
        body = draw(st.binary(max_size=200))
        mime = st.sampled_from(["image/jpeg", "image/png", "text/html"]) | st.text(max_size=5)
        return {"route": route, "params": {"attempt": attempt, "mime": draw(mime)}, "body": body}
    elif route == "files":
        kind = draw(st.sampled_from(["inputs", "outputs", "temp", "input", "x"]))
        params = {"attempt": attempt, "name": draw(_DOWNLOADS | NAME)}
        return {"route": f"files/{kind}", "params": params, "body": None}
    elif route == "fail":
        error = st.fixed_dictionaries(
            {"type": st.text(max_size=8), "message": st.text(max_size=20)}
        )
        body = {"attempt": attempt, "error": draw(mostly(error, JSON))}
    else:
        body = draw(mostly(st.just({"attempt": attempt}), JSON))
    return {"route": route, "params": {}, "body": body}


_DATA = st.fixed_dictionaries(
    {},
    optional={"node": JSON, "value": JSON, "max": JSON, "output": JSON, "prompt_id": JSON},
)
_DOWNLOADS = st.sampled_from(
    ["s.png", "../user002/s.png", "../../s.png", "/s.png", "..%2Fuser002%2Fs.png", "e2e.png"]
)


def _with_attempt(value: Any, attempt: int) -> Any:
    """The real attempt where the case left it out (None), recursively in the body."""
    if value is None:
        return attempt
    return value


@given(call=job_calls())
@fuzz(EXAMPLES)
def test_reports_about_a_job_never_fail_the_server_or_hand_out_files(
    stack: Stack, held: HeldJob, call: dict[str, Any]
) -> None:
    job = held.current()
    route, params, body = call["route"], dict(call["params"]), call["body"]
    if "attempt" in params:
        params["attempt"] = _with_attempt(params["attempt"], job["attempt"])
    if isinstance(body, dict) and "attempt" in body:
        body = {**body, "attempt": _with_attempt(body["attempt"], job["attempt"])}
    if route == "heartbeat" and isinstance(body, dict) and body.get("job_id") is None:
        body = {**body, "job_id": job["id"]}
    target = f"worker {route.split('/')[0]}"
    url = f"/worker/v1/jobs/{job['id']}/{route}"
    if route == "heartbeat":
        url = "/worker/v1/heartbeat"
    method = {"preview": "PUT", "files": "GET"}.get(route.split("/")[0], "POST")
    content = (
        body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    )
    before = files(stack)
    count(target)
    headers = {"Content-Type": "application/json"} if method == "POST" else {}
    r = held.gpu.request(method, url, params=params, content=content, headers=headers)
    answered(target, r.status_code)
    no_server_error(r, (route, params, body))
    assert SECRET not in r.content
    if route.startswith("files") or r.status_code >= 300:
        assert changes(before, files(stack)) == set()
    if r.status_code >= 300:
        assert r.status_code in REFUSALS, r.text
    elif route in ("release", "complete", "fail"):
        held.ended()


JOINING = st.sampled_from(["register", "object_info", "heartbeat"])
REGISTRATION = st.fixed_dictionaries(
    {"node_types": st.lists(st.sampled_from(["SaveImage", "EmptyImage"]) | st.text(max_size=8))},
    optional={"models": st.lists(st.text(max_size=8)) | JSON, "info": JSON},
)


@given(route=JOINING, body=REGISTRATION | JSON | st.binary(max_size=200), gzipped=st.booleans())
@fuzz(EXAMPLES // 2)
def test_joining_bodies_never_fail_the_server(
    stack: Stack, held: HeldJob, route: str, body: Any, gzipped: bool
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if route == "object_info" and gzipped:
        raw, headers = gzip.compress(raw), {"Content-Encoding": "gzip"}
    method = "PUT" if route == "object_info" else "POST"
    target = f"worker {route}"
    count(target)
    r = held.gpu.request(method, f"/worker/v1/{route}", content=raw, headers=headers)
    answered(target, r.status_code)
    no_server_error(r, (route, body))
    assert r.status_code < 300 or r.status_code in REFUSALS, r.text
    if r.status_code < 300 and route != "heartbeat":
        register(stack)  # the next case meets the GPU as it was
