"""The defects the fuzzers found, each pinned by the smallest case that showed it."""

from __future__ import annotations

import pytest

from tests.reliability.fuzz.stack import Stack
from tests.reliability.fuzz.test_prompt_bodies import register
from tests.reliability.fuzz.test_uploads import PNG
from tests.support.graphs import SAVE

SAVE_WITH_A_BARE_NODE = {
    **SAVE,
    "3": {"class_type": "EmptyImage"},  # no `inputs`; not an output's input: never checked
}


@pytest.mark.parametrize("gpu", [False, True], ids=["held", "validated"])
def test_a_node_without_inputs_leaves_the_senders_queue_readable(stack: Stack, gpu: bool) -> None:
    """Found by test_prompt_bodies: such a prompt was accepted and stored as sent, and reading
    the job back (its `inputs` required) made the user's queue, history and jobs answer 500."""
    if gpu:
        register(stack)
    with stack.client("user001") as alice:
        r = alice.post("/user001/api/prompt", json={"prompt": SAVE_WITH_A_BARE_NODE})
        assert r.status_code == 200, r.text
        job = r.json()["prompt_id"]
        for path in ("/user001/api/queue", "/user001/api/history", "/user001/api/jobs"):
            assert alice.get(path).status_code == 200, path
        assert alice.get(f"/user001/api/jobs/{job}").json()["id"] == job
    with stack.client("teacher") as teacher:
        assert teacher.get("/admin/api/state").status_code == 200


def test_an_upload_named_like_an_existing_folder_gets_a_free_name(stack: Stack) -> None:
    """Found by test_uploads: the same-bytes check opened the folder `Nk` as a file
    (IsADirectoryError, 500) instead of passing on to `Nk (1)`."""
    with stack.client("user001") as alice:
        r = alice.post(
            "/user001/api/upload/image",
            files={"image": ("a.png", PNG, "image/png")},
            data={"subfolder": "Nk"},
        )
        assert r.status_code == 200, r.text
        r = alice.post("/user001/api/upload/image", files={"image": ("Nk", PNG, "image/png")})
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "Nk (1)", "subfolder": "", "type": "input"}
    inputs = stack.data_dir / "inputs" / "user001"
    assert (inputs / "Nk (1)").read_bytes() == PNG
    assert (inputs / "Nk" / "a.png").read_bytes() == PNG
