"""ComfyUI's user data (`/<user>/api/userdata/{file}`: save, read, move, delete, and the two
listings) with any names, spelled as the page spells them (one URL-encoded segment) or with
their slashes bare, and any bodies. Never a 5xx; a refused request changes no file; an
accepted one changes files only in the caller's own user-data folder, and what it saved is
there; nothing another user saved is ever read back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.fuzz.effects import changes, files, no_server_error, outside
from tests.reliability.fuzz.stack import Stack
from tests.reliability.fuzz.strategies import FOLDER, JSON, NAME, PLAIN, fuzz
from tests.reliability.fuzz.tally import answered, count

EXAMPLES = 200
API = "/user001/api"
SECRET = b"user002-secret-3c7d"  # in user002's folder: must never come back to user001
REFUSALS = {400, 403, 404, 405, 409, 413}  # 405: a name whose dots the URL lost
# Names the fixture made (and saves make again), so that moves and reads find something.
KNOWN = st.sampled_from(["workflows/a.json", "b.json", "workflows/c.json"])
NAMES = (
    KNOWN
    | NAME
    | (FOLDER.map(lambda f: f + "/" if f else f) | st.just("workflows/")).flatmap(
        lambda folder: PLAIN.map(lambda name: folder + name)
    )
)
DIRS = st.sampled_from(["workflows", "workflows/", "", "/", "subgraphs/", "."])
FLAG = st.sampled_from(["true", "false", "True", "", "1"]) | st.text(max_size=5)
BODY = st.binary(max_size=200) | JSON.map(lambda v: repr(v).encode())


def _path(name: str, bare: bool) -> str:
    """The page's spelling (`workflows%2Fa.json`) or bare slashes (`workflows/a.json`)."""
    return quote(name, safe="/" if bare else "")


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["save", "save", "move", "delete", "read", "list", "list v2"]))
    bare = draw(st.booleans())
    name = _path(draw(NAMES), bare)
    if op == "save":
        params = {"overwrite": draw(FLAG), "full_info": draw(FLAG)}
        return {"op": op, "method": "POST", "url": f"{API}/userdata/{name}", "params": params,
                "content": draw(BODY)}  # fmt: skip
    if op == "move":
        dest = _path(draw(NAMES), bare)
        url = f"{API}/userdata/{name}/move/{dest}"
        return {"op": op, "method": "POST", "url": url, "params": {"overwrite": draw(FLAG)}}
    if op in ("delete", "read"):
        method = "DELETE" if op == "delete" else "GET"
        return {"op": op, "method": method, "url": f"{API}/userdata/{name}", "params": {}}
    if op == "list":
        params = {"dir": draw(DIRS | NAMES), "recurse": draw(FLAG), "split": draw(FLAG),
                  "full_info": draw(FLAG)}  # fmt: skip
        return {"op": op, "method": "GET", "url": f"{API}/userdata", "params": params}
    return {
        "op": op,
        "method": "GET",
        "url": f"{API}/v2/userdata",
        "params": {"path": draw(DIRS | NAMES)},
    }


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[httpx.Client]:
    """user001, with files of their own to move and overwrite, and user002's secret."""
    mine = stack.data_dir / "userdata" / "user001" / "workflows"
    mine.mkdir(parents=True)
    for name in ("workflows/a.json", "b.json", "workflows/c.json"):
        (mine.parent / name).write_text("{}")
    theirs = stack.data_dir / "userdata" / "user002" / "workflows"
    theirs.mkdir(parents=True)
    (theirs / "a.json").write_bytes(SECRET)
    with stack.client("user001") as client:
        yield client


@given(request=requests())
@fuzz(EXAMPLES)
def test_user_data_changes_only_in_the_callers_folder(
    stack: Stack, alice: httpx.Client, request: dict[str, Any]
) -> None:
    target = f"userdata {request['op']}"
    before = files(stack)
    count(target)
    r = alice.request(
        request["method"], request["url"], params=request["params"],
        content=request.get("content"),
    )  # fmt: skip
    answered(target, r.status_code)
    no_server_error(r, request)
    assert SECRET not in r.content
    changed = changes(before, files(stack))
    if r.status_code >= 300:
        assert r.status_code in REFUSALS, r.text  # never 401, or 404 for the route itself
        assert changed == set(), (r.status_code, changed)
        return
    assert outside(changed, "user001", ["userdata"]) == set(), changed
    if request["op"] == "save":
        answer = r.json()
        saved = answer["path"] if isinstance(answer, dict) else answer
        assert (stack.data_dir / "userdata" / "user001" / saved).read_bytes() == request["content"]
    elif request["op"] in ("read", "list", "list v2"):
        assert changed == set()
