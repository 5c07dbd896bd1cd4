"""Export zips on paper: which folders, which names, what the files and progress are called."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import PurePosixPath

import pytest

from queue_manager.core.ids import UserId
from queue_manager.storage.export_plan import (
    Found,
    Progress,
    archive_name,
    content_disposition,
    download_name,
    human_bytes,
    plan,
    progress_line,
    room_download_name,
    room_sources,
    user_sources,
)

ALICE, BOB = UserId("user001"), UserId("user002")


def test_a_participants_zip_has_outputs_inputs_and_workflows() -> None:
    sources = user_sources(ALICE)
    assert [(s.folder, str(s.arc)) for s in sources] == [
        (("outputs", "user001"), "outputs"),
        (("inputs", "user001"), "inputs"),
        (("userdata", "user001", "workflows"), "workflows"),
    ]


def test_the_rooms_zip_has_a_folder_per_user_in_name_order() -> None:
    sources = room_sources([BOB, ALICE, BOB])
    assert [str(s.arc) for s in sources] == [
        "user001/outputs",
        "user001/inputs",
        "user001/workflows",
        "user002/outputs",
        "user002/inputs",
        "user002/workflows",
    ]


def test_the_plan_names_entries_in_order_and_stores_media() -> None:
    outputs, _, workflows = user_sources(ALICE)
    found = [
        Found(workflows, PurePosixPath("lesson/step.JSON"), 10),
        Found(outputs, PurePosixPath("video/b.mp4"), 1000),
        Found(outputs, PurePosixPath("a.png"), 5),
    ]
    chosen = plan(found)
    assert [(e.arcname, e.path, e.deflate) for e in chosen.entries] == [
        ("outputs/a.png", ("outputs", "user001", "a.png"), False),
        ("outputs/video/b.mp4", ("outputs", "user001", "video", "b.mp4"), False),
        (
            "workflows/lesson/step.JSON",
            ("userdata", "user001", "workflows", "lesson", "step.JSON"),
            True,
        ),
    ]
    assert (chosen.files, chosen.bytes) == (3, 1015)


def test_names_of_the_downloads() -> None:
    assert download_name(ALICE, date(2026, 12, 7)) == "user001-workshop-2026-12-07.zip"
    assert room_download_name(date(2026, 12, 7)) == "workshop-room-2026-12-07.zip"
    assert archive_name(datetime(2026, 12, 7, 14, 30, 5)) == "2026-12-07-143005.zip"
    assert content_disposition("a.zip") == 'attachment; filename="a.zip"'


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_500_000, "1.5 MB"),
        (999_949_999, "999.9 MB"),
        (2_000_000_000, "2.0 GB"),
        (3_400_000_000_000, "3.4 TB"),
        (5_000_000_000_000_000, "5000.0 TB"),
    ],
)
def test_sizes_read_as_a_file_manager_shows_them(n: int, shown: str) -> None:
    assert human_bytes(n) == shown


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        (Progress(12, 40, 1_200_000_000, 3_400_000_000), "12/40 files, 1.2 GB of 3.4 GB (35%)"),
        (Progress(0, 0, 0, 0), "0/0 files, 0 B of 0 B (100%)"),
        (Progress(3, 3, 15, 15), "3/3 files, 15 B of 15 B (100%)"),
    ],
)
def test_progress_lines(progress: Progress, line: str) -> None:
    assert progress_line(progress) == line
