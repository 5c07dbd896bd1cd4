"""The rules of the workshop's default settings (core/setting_defaults.py)."""

from __future__ import annotations

import pytest

from queue_manager.core.errors import SettingDefaultInvalid
from queue_manager.core.setting_defaults import (
    MAX_DEFAULTS,
    MAX_VALUE_BYTES,
    check_id,
    checked,
    decoded,
    encode_value,
    parse_value,
    with_defaults,
)


@pytest.mark.parametrize(
    "setting_id", ["Comfy.TutorialCompleted", "pysssss.Locking", "a", "LiteGraph.Canvas-x_1"]
)
def test_setting_ids_as_comfyui_spells_them_are_taken(setting_id: str) -> None:
    assert check_id(setting_id) == setting_id


@pytest.mark.parametrize("setting_id", ["", "has space", "tab\there", "é", "x" * 201, "new\nline"])
def test_an_id_that_is_no_setting_id_is_refused(setting_id: str) -> None:
    with pytest.raises(SettingDefaultInvalid, match="printable characters"):
        check_id(setting_id)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("42", 42), ('"dark"', "dark"), ('{"a": [1, null]}', {"a": [1, None]})],
)
def test_an_operator_types_values_as_json(text: str, value: object) -> None:
    assert parse_value("Comfy.X", text) == value


@pytest.mark.parametrize("text", ["", "  ", "dark", "{broken", "NaN", "Infinity", "[1,"])
def test_a_value_that_is_not_json_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(SettingDefaultInvalid, match=r"must be JSON, e\.g\. true"):
        parse_value("Comfy.X", text)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (float("nan"), "not a JSON value"),
        ({1j}, "not a JSON value"),
        ("x" * MAX_VALUE_BYTES, "over"),
    ],
)
def test_a_value_that_cannot_be_stored_is_refused(value: object, why: str) -> None:
    with pytest.raises(SettingDefaultInvalid, match=why):
        encode_value("Comfy.X", value)


def test_a_whole_set_is_checked_and_stored_as_json_texts() -> None:
    stored = checked({"Comfy.A": True, "Comfy.B": {"x": 1}})
    assert stored == {"Comfy.A": "true", "Comfy.B": '{"x":1}'}
    assert decoded(stored) == {"Comfy.A": True, "Comfy.B": {"x": 1}}
    with pytest.raises(SettingDefaultInvalid, match="at most"):
        checked({f"Comfy.{i}": i for i in range(MAX_DEFAULTS + 1)})
    with pytest.raises(SettingDefaultInvalid):
        checked({"Comfy.A": True, "bad id": 1})


@pytest.mark.parametrize(
    ("own", "defaults", "seen"),
    [
        ({}, {"A": True}, {"A": True}),
        ({"A": False}, {"A": True}, {"A": False}),  # theirs wins, even when it is falsy
        ({"A": None}, {"A": True}, {"A": None}),
        ({"B": 1}, {"A": True}, {"A": True, "B": 1}),
        ({"B": 1}, {}, {"B": 1}),
    ],
)
def test_a_participants_own_setting_always_wins_over_the_default(
    own: dict[str, object], defaults: dict[str, object], seen: dict[str, object]
) -> None:
    assert with_defaults(own, defaults) == seen
