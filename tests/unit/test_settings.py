"""Inconsistent settings fail at start-up with one clear message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from queue_manager.settings import Settings
from tests.support.paths import ROOT


def test_lease_must_outlast_two_heartbeats() -> None:
    with pytest.raises(ValidationError, match="at least twice heartbeat_seconds"):
        Settings(lease_seconds=8, heartbeat_seconds=5)


def test_placeholder_secret_is_refused_outside_local_mode() -> None:
    with pytest.raises(ValidationError, match="CW_SECRET_KEY is a placeholder"):
        Settings(local_mode=False)
    Settings(local_mode=False, secret_key="a-real-secret-of-some-length")  # type: ignore[arg-type]


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_SCHEDULING_MODE", "fifo")
    monkeypatch.setenv("CW_MAX_RUNNING_PER_USER", "2")
    s = Settings()
    assert s.scheduling_mode.value == "fifo"
    assert s.max_running_per_user == 2


def test_every_setting_is_in_env_example() -> None:

    example = (ROOT / ".env.example").read_text()
    for name in Settings.model_fields:
        assert f"CW_{name.upper()}=" in example, name
