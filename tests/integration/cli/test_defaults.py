"""`comfy-workshop defaults`: the participants' default settings from the command line."""

from __future__ import annotations

import json
import os
import subprocess

from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.setting_defaults import BUILT_IN
from tests.support.cli import run_cli


def test_operators_list_set_and_unset_default_settings(
    redis_server: RedisServer, prefix: str
) -> None:
    env = {**os.environ, "CW_REDIS_URL": redis_server.url, "CW_KEY_PREFIX": prefix}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(env, "defaults", *args)

    def listed() -> list[str]:
        done = cli("list")
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    def lines(defaults: dict[str, object]) -> list[str]:
        return [f"{k}\t{json.dumps(v)}" for k, v in sorted(defaults.items())]

    assert listed() == lines(BUILT_IN)
    done = cli("set", "Comfy.Locale", '"fr"')
    assert (done.returncode, done.stdout) == (0, 'Comfy.Locale\t"fr"\n'), done.stderr
    assert cli("set", "Comfy.TutorialCompleted", "false").returncode == 0
    assert cli("unset", "Comfy.Notification.ShowVersionUpdates").returncode == 0
    after = {**BUILT_IN, "Comfy.Locale": "fr", "Comfy.TutorialCompleted": False}
    del after["Comfy.Notification.ShowVersionUpdates"]
    assert listed() == lines(after)

    for bad in [
        ("set", "Comfy.Locale", "fr"),  # not JSON: a string needs its quotes
        ("set", "has space", "1"),
        ("set", "Comfy.Locale"),
        ("unset",),
    ]:
        refused = cli(*bad)
        assert refused.returncode == 2, (bad, refused.stdout)
        assert "Traceback" not in refused.stderr
    assert "must be JSON" in cli("set", "Comfy.Locale", "fr").stdout
    gone = cli("unset", "Comfy.Nothing")
    assert (gone.returncode, gone.stdout) == (
        1,
        "no default for Comfy.Nothing (see: comfy-workshop defaults list)\n",
    )
    assert listed() == lines(after)  # an unset built-in one stays unset
