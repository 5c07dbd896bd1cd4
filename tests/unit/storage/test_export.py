"""Export zips on a real disk: what is found, what a change meanwhile does, and that the zip comes
out a chunk at a time; and clearing users' folders for the next workshop."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_manager.core.ids import UserId
from queue_manager.storage.clearing import clear_user_folders
from queue_manager.storage.export import CHUNK, plan_room, plan_user, users_on_disk, zip_chunks

ALICE, BOB = UserId("user001"), UserId("user002")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def put(root: Path, rel: str, content: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def unzip(chunks: Iterator[bytes]) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as z:
        assert z.testzip() is None
        return {name: z.read(name) for name in z.namelist()}


def test_only_visible_regular_files_are_found_and_no_link_is_followed(
    data: Path, tmp_path: Path
) -> None:
    put(data, "outputs/user001/a.png", b"a")
    put(data, "outputs/user001/deep/er/b.png", b"b")
    put(data, "outputs/user001/.c0ffee.part", b"half")
    put(data, "outputs/user001/.hidden/c.png", b"c")
    os.mkfifo(data / "outputs/user001/pipe.png")
    outside = put(tmp_path, "outside/secret.png", b"secret")
    os.symlink(outside, data / "outputs/user001/link.png")
    os.symlink(outside.parent, data / "outputs/user001/folder")
    put(data, "outputs/user002/bob.png", b"bob")
    (data / "inputs").mkdir()
    os.symlink(data / "outputs/user002", data / "inputs/user001", target_is_directory=True)
    chosen = plan_user(data, ALICE)
    assert [e.arcname for e in chosen.entries] == ["outputs/a.png", "outputs/deep/er/b.png"]
    assert unzip(zip_chunks(data, chosen)) == {
        "outputs/a.png": b"a",
        "outputs/deep/er/b.png": b"b",
    }


def test_a_file_gone_since_the_listing_is_left_out_and_the_zip_is_whole(data: Path) -> None:
    put(data, "outputs/user001/a.png", b"a")
    gone = put(data, "outputs/user001/b.png", b"b")
    chosen = plan_user(data, ALICE)
    gone.unlink()
    assert unzip(zip_chunks(data, chosen)) == {"outputs/a.png": b"a"}


def test_a_file_swapped_for_a_link_since_the_listing_is_left_out(
    data: Path, tmp_path: Path
) -> None:
    swapped = put(data, "outputs/user001/a.png", b"a")
    outside = put(tmp_path, "secret.png", b"secret")
    chosen = plan_user(data, ALICE)
    swapped.unlink()
    os.symlink(outside, swapped)
    assert unzip(zip_chunks(data, chosen)) == {}


def test_a_file_replaced_since_the_listing_is_taken_whole_as_it_is_now(data: Path) -> None:
    put(data, "userdata/user001/workflows/w.json", b'{"old": 1}')
    chosen = plan_user(data, ALICE)
    put(data, "userdata/user001/workflows/.tmp", b'{"new": "longer"}').replace(
        data / "userdata/user001/workflows/w.json"
    )
    assert unzip(zip_chunks(data, chosen)) == {"workflows/w.json": b'{"new": "longer"}'}


def test_a_file_replaced_while_it_is_read_is_taken_whole_as_it_was(data: Path) -> None:
    old = bytes(range(256)) * (3 * CHUNK // 256)
    put(data, "outputs/user001/big.png", old)
    chunks = zip_chunks(data, plan_user(data, ALICE))
    first = [next(chunks), next(chunks)]  # the header and the first chunk of data
    put(data, "outputs/user001/.new", b"new").replace(data / "outputs/user001/big.png")
    assert unzip(iter([*first, *chunks])) == {"outputs/big.png": old}


def test_the_zip_comes_out_a_chunk_at_a_time(data: Path) -> None:
    size = 64 * CHUNK
    big = data / "outputs/user001/big.mp4"
    big.parent.mkdir(parents=True)
    with big.open("wb") as f:
        f.truncate(size)  # sparse
    sizes = [len(c) for c in zip_chunks(data, plan_user(data, ALICE))]
    assert len(sizes) >= 64
    assert max(sizes) <= CHUNK
    assert sum(sizes) > size


def test_the_room_has_every_user_with_a_real_folder(data: Path, tmp_path: Path) -> None:
    put(data, "outputs/user001/a.png", b"a")
    put(data, "userdata/user002/workflows/w.json", b"{}")
    put(data, "userdata/user003/comfy.settings.json", b"{}")  # a folder, nothing exported
    put(data, "outputs/Not A User/x.png", b"x")
    put(data, "outputs/user004", b"a file, not a folder")
    (data / "inputs").mkdir()
    os.symlink(tmp_path, data / "inputs" / "user005")
    assert users_on_disk(data) == ["user001", "user002", "user003"]
    assert [e.arcname for e in plan_room(data).entries] == [
        "user001/outputs/a.png",
        "user002/workflows/w.json",
    ]


def test_clearing_removes_the_chosen_users_folders_and_follows_no_link(
    data: Path, tmp_path: Path
) -> None:
    keep = put(tmp_path, "outside/keep.png", b"keep")
    put(data, "outputs/user001/a.png", b"a")
    os.symlink(keep, data / "outputs/user001/link.png")
    os.symlink(keep.parent, data / "outputs/user001/folder")
    put(data, "userdata/user001/workflows/w.json", b"{}")
    put(data, "outputs/user002/b.png", b"b")
    (data / "inputs").mkdir()
    os.symlink(keep.parent, data / "inputs" / "user001")
    removed = clear_user_folders(data, ("outputs", "inputs", "temp"), [ALICE, UserId("../x")])
    assert removed == 2
    assert sorted(str(p.relative_to(data)) for p in data.rglob("*")) == [
        "inputs",
        "outputs",
        "outputs/user002",
        "outputs/user002/b.png",
        "userdata",
        "userdata/user001",
        "userdata/user001/workflows",
        "userdata/user001/workflows/w.json",
    ]
    assert keep.read_bytes() == b"keep"


def test_files_past_the_zip64_limit_get_zip64_records(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit (4 GiB) lowered to 1 MiB, so that the library's ZIP64 path runs on small
    files: what a 5 GB video takes, and every zip reader still reads it."""
    monkeypatch.setattr("zipstream.ng.ZIP64_LIMIT", CHUNK)
    content = bytes(range(256)) * (3 * CHUNK // 256)
    put(data, "outputs/user001/big.mp4", content)
    put(data, "outputs/user001/small.png", b"small")
    raw = b"".join(zip_chunks(data, plan_user(data, ALICE)))
    assert b"PK\x06\x06" in raw  # the ZIP64 end of central directory record
    assert unzip(iter([raw])) == {"outputs/big.mp4": content, "outputs/small.png": b"small"}
