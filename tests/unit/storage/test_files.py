"""Streaming files into a participant's folder on a real disk."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest

from queue_manager.core.errors import StorageLimit, UnsafePath
from queue_manager.core.ids import UserId
from queue_manager.core.paths import safe_output_path
from queue_manager.storage import files
from queue_manager.storage.files import FileStore

U = UserId("user001")


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "data")


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def test_a_stream_lands_in_the_users_folder(store: FileStore) -> None:
    rel = safe_output_path("capture", "ref_00001_.png")
    stored = await store.write_stream("outputs", U, rel, chunks(b"abc", b"def"), max_bytes=100)
    assert stored.path == PurePosixPath("capture/ref_00001_.png")
    assert stored.size == 6
    assert (store.user_dir("outputs", U) / "capture/ref_00001_.png").read_bytes() == b"abcdef"


async def test_an_existing_file_is_never_overwritten(store: FileStore) -> None:
    rel = PurePosixPath("x.png")
    first = await store.write_stream("outputs", U, rel, chunks(b"1"), max_bytes=10)
    second = await store.write_stream("outputs", U, rel, chunks(b"2"), max_bytes=10)
    third = await store.write_stream(
        "outputs", U, PurePosixPath("noext"), chunks(b"3"), max_bytes=10
    )
    fourth = await store.write_stream(
        "outputs", U, PurePosixPath("noext"), chunks(b"4"), max_bytes=10
    )
    assert (first.path.name, second.path.name) == ("x.png", "x_1.png")
    assert (third.path.name, fourth.path.name) == ("noext", "noext_1")
    folder = store.user_dir("outputs", U)
    assert (folder / "x.png").read_bytes() == b"1"
    assert (folder / "x_1.png").read_bytes() == b"2"


async def test_concurrent_writers_of_one_name_all_keep_their_file(store: FileStore) -> None:
    results = await asyncio.gather(
        *(
            store.write_stream(
                "outputs", U, PurePosixPath("same.png"), chunks(bytes([i])), max_bytes=9
            )
            for i in range(20)
        )
    )
    names = {r.path.name for r in results}
    assert len(names) == 20
    folder = store.user_dir("outputs", U)
    assert sorted((folder / n).read_bytes() for n in names) == [bytes([i]) for i in range(20)]


async def test_a_link_planted_in_the_users_folder_is_not_followed(
    store: FileStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = store.user_dir("outputs", U)
    folder.mkdir(parents=True)
    (folder / "escape").symlink_to(outside)
    with pytest.raises(UnsafePath, match="not a real folder"):
        await store.write_stream(
            "outputs", U, PurePosixPath("escape/x.png"), chunks(b"x"), max_bytes=9
        )
    (folder / "taken.png").symlink_to(outside / "target.png")
    stored = await store.write_stream(
        "outputs", U, PurePosixPath("taken.png"), chunks(b"x"), max_bytes=9
    )
    assert (
        stored.path.name == "taken_1.png"
    )  # the link's name counts as taken, never written through
    assert list(outside.iterdir()) == []


async def test_a_users_folder_that_is_a_link_is_refused(store: FileStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "outputs").mkdir(parents=True)
    (store.root / "outputs" / U).symlink_to(outside)
    with pytest.raises(UnsafePath):
        await store.write_stream("outputs", U, PurePosixPath("x.png"), chunks(b"x"), max_bytes=9)
    assert list(outside.iterdir()) == []


async def test_too_large_a_stream_is_refused_and_leaves_nothing(store: FileStore) -> None:
    with pytest.raises(StorageLimit):
        await store.write_stream(
            "outputs", U, PurePosixPath("big.bin"), chunks(b"x" * 6, b"y" * 6), max_bytes=10
        )
    assert files_in(store.user_dir("outputs", U)) == []


async def test_a_stream_that_breaks_half_way_leaves_nothing(store: FileStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise ConnectionResetError("worker went away")

    with pytest.raises(ConnectionResetError):
        await store.write_stream("outputs", U, PurePosixPath("a.png"), broken(), max_bytes=100)
    assert files_in(store.user_dir("outputs", U)) == []


async def test_written_files_are_readable_by_the_server_only_as_regular_files(
    store: FileStore,
) -> None:
    stored = await store.write_stream(
        "inputs", U, PurePosixPath("in.png"), chunks(b"img"), max_bytes=9
    )
    st = os.lstat(store.user_dir("inputs", U) / stored.path)
    assert st.st_nlink == 1  # the temporary name is gone


@pytest.mark.slow
async def test_a_large_stream_is_written_with_flat_memory(store: FileStore) -> None:
    import tracemalloc

    block = b"\x00" * (1 << 20)

    async def big() -> AsyncIterator[bytes]:
        for _ in range(300):
            yield block

    tracemalloc.start()
    try:
        stored = await store.write_stream(
            "outputs", U, PurePosixPath("video.mp4"), big(), max_bytes=1 << 40
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == 300 << 20
    assert peak < 16 << 20, f"peak Python allocations {peak / 2**20:.1f} MiB for a 300 MiB file"


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files over a few bytes are written as they come (not held whole)."""
    monkeypatch.setattr(files, "WHOLE_BYTES", 4)


@pytest.mark.usefixtures("streamed")
async def test_a_long_stream_is_written_as_it_comes(store: FileStore) -> None:
    parts = [bytes([i]) * 3 for i in range(10)]
    stored = await store.write_stream(
        "outputs", U, PurePosixPath("long.bin"), chunks(*parts), max_bytes=100
    )
    assert stored.size == 30
    assert (store.user_dir("outputs", U) / stored.path).read_bytes() == b"".join(parts)
    assert files_in(store.user_dir("outputs", U)) == ["long.bin"]


@pytest.mark.usefixtures("streamed")
async def test_a_long_stream_over_the_limit_leaves_nothing(store: FileStore) -> None:
    with pytest.raises(StorageLimit):
        await store.write_stream(
            "outputs", U, PurePosixPath("big.bin"), chunks(*[b"xyz"] * 5), max_bytes=10
        )
    assert files_in(store.user_dir("outputs", U)) == []


@pytest.mark.usefixtures("streamed")
async def test_a_long_stream_that_breaks_leaves_nothing(store: FileStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"first part"
        yield b"second part"
        raise ConnectionResetError("worker went away")

    with pytest.raises(ConnectionResetError):
        await store.write_stream("outputs", U, PurePosixPath("a.png"), broken(), max_bytes=100)
    assert files_in(store.user_dir("outputs", U)) == []


async def test_discard_removes_only_a_regular_file_inside_the_users_folder(
    store: FileStore, tmp_path: Path
) -> None:
    rel = safe_output_path("f", "p_00001_.png")
    stored = await store.write_stream("outputs", U, rel, chunks(b"png"), max_bytes=100)
    await store.discard("outputs", U, stored.path)
    assert files_in(store.user_dir("outputs", U)) == []
    await store.discard("outputs", U, stored.path)  # gone already: no error
    # a folder that is not there is not created on the way (a removed participant's folder)
    await store.discard("outputs", UserId("user002"), PurePosixPath("a/b/x.png"))
    assert not (store.root / "outputs" / "user002").exists()
    # a link put in the folder is left alone, and so is what it points to
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"keep")
    os.symlink(outside, store.user_dir("outputs", U) / "f" / "link.png")
    await store.discard("outputs", U, PurePosixPath("f/link.png"))
    assert outside.read_bytes() == b"keep"
    assert (store.user_dir("outputs", U) / "f" / "link.png").is_symlink()
    # a linked folder on the way, or a name that climbs, is refused
    os.symlink(tmp_path, store.user_dir("outputs", U) / "up")
    with pytest.raises(UnsafePath):
        await store.discard("outputs", U, PurePosixPath("up/secret.png"))
    with pytest.raises(UnsafePath):
        await store.discard("outputs", U, PurePosixPath("f/.."))
    assert outside.read_bytes() == b"keep"
