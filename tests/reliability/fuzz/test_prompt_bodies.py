"""ComfyUI's `POST /<user>/api/prompt` with any body: JSON of any shape, node graphs with odd
links and classes, numbers no float holds, bytes that are not JSON at all. Twice: before any
GPU has told its nodes (the prompt is held unchecked) and with a GPU's catalogue (checked as
ComfyUI checks it). Never a 5xx; a refused body queues nothing; an accepted one queues
exactly one job, the caller's (or answers the caller's job of that `prompt_id` again); no file
is written either way."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given

from queue_manager.cli.redis_server import RedisServer
from queue_manager.comfy.bundled import bundled_object_info
from tests.reliability.fuzz.conftest import ACCOUNTS
from tests.reliability.fuzz.effects import changes, files, jobs, no_server_error
from tests.reliability.fuzz.stack import Stack, running_stack
from tests.reliability.fuzz.strategies import RAW_JSON, fuzz
from tests.reliability.fuzz.tally import answered, count

EXAMPLES = 120
REFUSALS = {400, 413}


@pytest.fixture(scope="module")
def gpu_stack(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A stack whose GPU has registered with the bundled nodes: prompts are validated."""
    with running_stack(redis_server, tmp_path_factory.mktemp("gpu"), ACCOUNTS) as stack:
        register(stack)
        yield stack


def register(stack: Stack) -> None:
    info = bundled_object_info()
    with stack.worker() as gpu:
        r = gpu.post("/worker/v1/register", json={"node_types": sorted(info), "info": {}})
        assert r.status_code == 204, r.text
        body = gzip.compress(json.dumps(info).encode())
        r = gpu.put("/worker/v1/object_info", content=body, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 204, r.text


@given(body=RAW_JSON)
@fuzz(EXAMPLES)
def test_a_prompt_held_for_a_gpu_is_queued_for_its_sender_or_refused(
    stack: Stack, body: bytes
) -> None:
    with stack.client("user001") as alice:
        check_prompt(stack, alice, body, "prompt body, no GPU yet (held)")


@given(body=RAW_JSON)
@fuzz(EXAMPLES)
def test_a_prompt_checked_against_the_gpus_nodes_is_queued_or_refused(
    gpu_stack: Stack, body: bytes
) -> None:
    with gpu_stack.client("user001") as alice:
        check_prompt(gpu_stack, alice, body, "prompt body, GPU catalogue (validated)")


def check_prompt(stack: Stack, alice: httpx.Client, body: bytes, target: str) -> None:
    before = files(stack)
    mine, theirs = jobs(stack, "user001"), jobs(stack, "user002")
    count(target)
    r = alice.post(
        "/user001/api/prompt", content=body, headers={"Content-Type": "application/json"}
    )
    answered(target, r.status_code)
    no_server_error(r, body)
    if r.status_code == 200:
        job = r.json()["prompt_id"]
        # A new job, or the same prompt_id sent again: one job (a retry after a lost answer).
        assert jobs(stack, "user001") - mine == ({job} - mine)
    else:
        assert r.status_code in REFUSALS, r.text  # never 401/404: the caller is logged in
        assert jobs(stack, "user001") == mine
    assert jobs(stack, "user002") == theirs
    assert changes(before, files(stack)) == set()
