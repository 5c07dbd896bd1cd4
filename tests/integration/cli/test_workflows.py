"""`comfy-workshop workflows`: publishing the instructor's workflows from the command line, in
a subprocess against a private Redis; bad files change nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from queue_manager.cli.redis_server import RedisServer
from tests.support.cli import run_cli
from tests.support.graphs import sampler

UI = Path(__file__).parents[2] / "data" / "workflows" / "txt2img-ui.json"


def test_the_instructor_publishes_lists_sends_and_removes_workflows(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(env, "workflows", *args)

    step2 = tmp_path / "Step 2 - sampler.json"
    step2.write_text(json.dumps(sampler(4)))
    first = tmp_path / "Step 1.json"
    first.write_bytes(UI.read_bytes())
    done = cli("publish", str(first), str(step2), "--first", "--randomize-seed")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published Step 1 v1 (opens on a first visit)" in done.stdout
    assert "published Step 2 - sampler v1" in done.stdout
    listed = cli("list").stdout
    assert listed.index("1. Step 1") < listed.index("2. Step 2 - sampler")
    assert "[first, own seeds]" in listed
    assert cli("send", "Step 2 - sampler").returncode == 0
    assert cli("first", "Step 2 - sampler").returncode == 0
    assert "2. Step 2 - sampler\tapi\tv1" in cli("list").stdout
    assert cli("remove", "Step 1").returncode == 0
    gone = cli("remove", "Step 1")
    assert gone.returncode == 1 and "workflows list" in gone.stderr


def test_a_bad_file_is_refused_and_nothing_is_published(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}
    good = tmp_path / "good.json"
    good.write_bytes(UI.read_bytes())
    cases = {
        "notjson.json": b"{ nope",
        "neither.json": b'{"a": 1}',
        "huge.json": b'{"nodes": [], "links": [], "pad": "' + b"x" * (9 * 2**20) + b'"}',
        ".hidden.json": UI.read_bytes(),
    }
    for name, body in cases.items():
        bad = tmp_path / name
        bad.write_bytes(body)
        out = run_cli(env, "workflows", "publish", str(good), str(bad))
        assert out.returncode == 2, (name, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        assert name in out.stderr or "name" in out.stderr, out.stderr
    missing = run_cli(env, "workflows", "publish", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert "no workflows published" in run_cli(env, "workflows", "list").stdout
