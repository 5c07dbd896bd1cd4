"""`comfy-workshop rehearse` refuses options it cannot use in one line, before doing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_manager.cli.main import _parser
from queue_manager.cli.rehearse import run_rehearse_command
from queue_manager.settings import Settings


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("workshop.example.org", "--users", "2"), "is not an address: give it as https://HOST"),
        (("http://x", "--users", "0"), "--users and --jobs-per-user are at least 1"),
        (("http://x", "--users", "2", "--jobs-per-user", "0"), "at least 1"),
        (("http://x", "--users", "2", "--browsers", "3"), "--browsers is between 0 and --users"),
        (("http://x", "--users", "2", "--timeout", "0"), "--timeout is a number of seconds"),
        (("http://x", "--users", "2", "--password", "p"), "--password goes with --instructor"),
        (("http://x", "--users", "2", "--workflow", "/no/such.json"), "no such file"),
        (("http://x", "--users", "2", "--html", "/no/such/r.html"), "its folder does not exist"),
    ],
)
def test_bad_options_are_refused_before_anything_is_done(
    args: tuple[str, ...], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parsed = _parser().parse_args(["rehearse", *args])
    assert run_rehearse_command(Settings(data_dir=tmp_path), parsed) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("comfy-workshop rehearse: ") and says in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
