"""What `room reset` clears and keeps, from the `--keep` list."""

from __future__ import annotations

import pytest

from queue_manager.core.room_reset import (
    DEFAULT_KEEP,
    BadKeep,
    Part,
    cleared,
    folders,
    parse_keep,
    summary,
)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (None, {Part.ACCOUNTS}),
        ("accounts", {Part.ACCOUNTS}),
        ("accounts,workflows", {Part.ACCOUNTS, Part.WORKFLOWS}),
        (" Workflows , HISTORY ", {Part.WORKFLOWS, Part.HISTORY}),
        ("outputs,outputs", {Part.OUTPUTS}),
        ("none", set()),
        ("NONE", set()),
    ],
)
def test_keep_lists_read_as_parts(text: str | None, kept: set[Part]) -> None:
    assert parse_keep(text) == kept


@pytest.mark.parametrize("text", ["", ",", "bogus", "accounts,everything", "none,accounts", "all"])
def test_a_keep_list_naming_no_part_is_refused_with_the_choices(text: str) -> None:
    with pytest.raises(BadKeep) as refused:
        parse_keep(text)
    assert "accounts, history, inputs, outputs, workflows" in str(refused.value)


@pytest.mark.parametrize(
    ("keep", "gone", "tops"),
    [
        (
            DEFAULT_KEEP,
            (Part.OUTPUTS, Part.INPUTS, Part.WORKFLOWS, Part.HISTORY),
            ("outputs", "inputs", "temp", "userdata"),
        ),
        (frozenset(), tuple(Part), ("outputs", "inputs", "temp", "userdata")),
        (
            {Part.WORKFLOWS, Part.HISTORY},
            (Part.OUTPUTS, Part.INPUTS, Part.ACCOUNTS),
            ("outputs", "inputs", "temp"),
        ),
        ({Part.OUTPUTS, Part.INPUTS, Part.WORKFLOWS}, (Part.HISTORY, Part.ACCOUNTS), ()),
        (frozenset(Part), (), ()),
    ],
)
def test_what_is_cleared_and_which_folders(
    keep: frozenset[Part], gone: tuple[Part, ...], tops: tuple[str, ...]
) -> None:
    assert cleared(keep) == gone
    assert folders(keep) == tops


def test_the_summary_names_both_sides() -> None:
    assert summary(DEFAULT_KEEP) == "clears outputs, inputs, workflows, history; keeps accounts"
    assert summary(frozenset(Part)).startswith("clears nothing; keeps outputs")
