"""Path rules: whatever a worker names an output, it stays inside the participant's folder;
whatever a participant asks for, leaving the folder is refused with ComfyUI's status codes."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from queue_manager.core.errors import UnsafePath
from queue_manager.core.paths import MAX_COMPONENT_BYTES, requested_path, safe_output_path


@pytest.mark.parametrize(
    ("subfolder", "filename", "expected"),
    [
        ("", "ComfyUI_00001_.png", "ComfyUI_00001_.png"),
        ("capture", "ref_00001_.png", "capture/ref_00001_.png"),
        ("a/b", "x.png", "a/b/x.png"),
        ("..", "x.png", "x.png"),
        ("../../etc", "passwd", "etc/passwd"),
        ("", "../../../etc/passwd", "etc/passwd"),
        ("/abs/olute", "x.png", "abs/olute/x.png"),
        ("", "/etc/passwd", "etc/passwd"),
        ("a\\..\\..\\b", "x.png", "a/b/x.png"),
        ("", "..\\..\\win.ini", "win.ini"),
        ("", "x\x00.png", "x.png"),
        ("sub\x00dir", "x.png", "subdir/x.png"),
        ("", "line\nbreak.png", "linebreak.png"),
        ("", ".hidden", "_.hidden"),
        ("", "...", "output"),
        ("", "", "output"),
        ("", "..", "output"),
        (".", "x.png", "x.png"),
        ("", "CON", "_CON"),
        ("", "nul.txt", "_nul.txt"),
        ("lpt1", "x.png", "_lpt1/x.png"),
        ("", 'a<b>c:d"e|f?g*.png', "a_b_c_d_e_f_g_.png"),
        ("", "trailing. . .", "trailing"),
        ("", "  spaced.png  ", "spaced.png"),
        ("", "video/clip.mp4", "video/clip.mp4"),
        ("/".join("d" * 3 for _ in range(20)), "x.png", "/".join(["ddd"] * 8) + "/x.png"),
    ],
)
def test_worker_names_are_made_safe(subfolder: str, filename: str, expected: str) -> None:
    path = safe_output_path(subfolder, filename)
    assert path == PurePosixPath(expected)
    assert not path.is_absolute()
    assert ".." not in path.parts


def test_overlong_names_are_cut_keeping_the_extension() -> None:
    path = safe_output_path("", "é" * 300 + ".png")
    assert path.suffix == ".png"
    assert len(path.name.encode()) <= MAX_COMPONENT_BYTES
    path.name.encode().decode()  # still valid UTF-8: no multi-byte character cut in half


@pytest.mark.parametrize(
    ("subfolder", "filename", "status"),
    [
        ("", "", 404),
        ("", "/etc/passwd", 400),
        ("", "../x.png", 400),
        ("", "a..b.png", 400),  # ComfyUI refuses any '..' in a filename
        ("", "sub/x.png", 400),
        ("", "x\x00.png", 400),
        ("", "a\\b.png", 400),
        ("", ".hidden", 400),
        ("..", "x.png", 403),
        ("a/../..", "x.png", 403),
        ("/etc", "passwd", 403),
        ("a\\..", "x.png", 403),
        ("sub\x00", "x.png", 403),
    ],
)
def test_participant_requests_that_leave_the_folder_are_refused(
    subfolder: str, filename: str, status: int
) -> None:
    with pytest.raises(UnsafePath) as info:
        requested_path(subfolder, filename)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("subfolder", "filename", "expected"),
    [
        ("", "x.png", "x.png"),
        ("clipspace", "mask.png", "clipspace/mask.png"),
        ("a/b", "c d.png", "a/b/c d.png"),
        ("./a", "x.png", "a/x.png"),
    ],
)
def test_participant_requests_inside_the_folder_resolve(
    subfolder: str, filename: str, expected: str
) -> None:
    assert requested_path(subfolder, filename) == PurePosixPath(expected)
