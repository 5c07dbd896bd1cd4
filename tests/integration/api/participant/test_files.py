"""ComfyUI's file endpoints for one participant (`/view`, `/upload/image`, `/upload/mask`,
`/internal/files`) against the real app: ComfyUI 0.25.0's answers, on that participant's own
folders only, whatever the name, field, annotation or link tries."""

from __future__ import annotations

import io
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from queue_manager.api.app import create_app
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.ids import UserId
from queue_manager.storage.files import FileStore, Kind
from queue_manager.storage.listing import input_exists, input_images
from queue_manager.store.accounts import Role
from tests.support import participants as accounts
from tests.support.settings import make_settings

ALICE = UserId("user001")
BOB = UserId("user002")
VIEW = "/user001/api/view"
UPLOAD = "/user001/api/upload/image"
MASK = "/user001/api/upload/mask"
T0 = 1_800_000_000  # file times are set, never waited for


def png(color: tuple[int, ...] = (10, 20, 30, 128), size: tuple[int, int] = (64, 48)) -> bytes:
    mode = "RGBA" if len(color) == 4 else "RGB"
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def store(app: FastAPI) -> FileStore:
    files: FileStore = app.state.files
    return files


def put(
    app: FastAPI, kind: Kind, user: str, rel: str, data: bytes, mtime: int | None = None
) -> Path:
    path = store(app).user_dir(kind, UserId(user)) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def tree(root: Path) -> set[str]:
    """Every entry under `root` (files, folders, links), relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


async def log_in(client: httpx.AsyncClient, name: str) -> None:
    """Swap HTTP Basic (an argon2 check per request) for the session cookie, for tests that
    send many requests; the answers are the same either way."""
    r = await client.post("/login", data={"username": name, "password": accounts.PASSWORD})
    assert r.status_code == 303


async def upload(
    client: httpx.AsyncClient,
    name: str,
    data: bytes,
    url: str = UPLOAD,
    **fields: str,
) -> httpx.Response:
    return await client.post(url, files={"image": (name, data, "image/png")}, data=fields)


# -- /view ----------------------------------------------------------------------------------------


async def test_view_serves_each_folder_with_comfyuis_headers(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    await log_in(alice, "user001")
    kinds: dict[str, Kind] = {"output": "outputs", "input": "inputs", "temp": "temp"}
    for comfy_type, kind in kinds.items():
        data = png((len(comfy_type), 2, 3, 4))
        path = put(app, kind, "user001", "capture/ref_00001_.png", data, mtime=T0)
        query = {"filename": "ref_00001_.png", "subfolder": "capture", "type": comfy_type}
        for route in ("/user001/api", "/user001"):  # ComfyUI's `/api` alias
            r = await alice.get(f"{route}/view", params=query)
            assert r.status_code == 200
            assert r.content == data
            info = path.stat()
            assert r.headers["content-disposition"] == 'filename="ref_00001_.png"'
            assert r.headers["content-type"] == "image/png"
            assert r.headers["etag"] == f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
            assert r.headers["last-modified"] == "Fri, 15 Jan 2027 08:00:00 GMT"
            assert r.headers["accept-ranges"] == "bytes"
            assert r.headers["content-length"] == str(len(data))
            assert "cache-control" not in r.headers


async def test_type_defaults_to_output_and_an_annotation_wins(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    put(app, "outputs", "user001", "x.png", b"out")
    put(app, "inputs", "user001", "x.png", b"in")
    put(app, "temp", "user001", "x.png", b"tmp")
    assert (await alice.get(VIEW, params={"filename": "x.png"})).content == b"out"
    annotated = {"filename": "x.png [input]", "type": "output"}
    assert (await alice.get(VIEW, params=annotated)).content == b"in"
    annotated = {"filename": "x.png [temp]", "type": "bogus"}
    assert (await alice.get(VIEW, params=annotated)).content == b"tmp"
    # Extra parameters (the page's cache-busting `rand`) are ignored; the first repeat counts.
    r = await alice.get(f"{VIEW}?filename=x.png&type=input&type=temp&rand=0.123")
    assert r.content == b"in"


async def test_head_answers_the_headers_only(app: FastAPI, alice: httpx.AsyncClient) -> None:
    data = png()
    put(app, "outputs", "user001", "x.png", data)
    get = await alice.get(VIEW, params={"filename": "x.png"})
    head = await alice.head(VIEW, params={"filename": "x.png"})
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "etag", "last-modified", "content-length", "accept-ranges"):
        assert head.headers[name] == get.headers[name]
    preview = await alice.head(VIEW, params={"filename": "x.png", "preview": "webp;50"})
    assert (preview.status_code, preview.content) == (200, b"")
    assert preview.headers["content-type"] == "image/webp"
    assert int(preview.headers["content-length"]) > 0


async def test_ranges_as_aiohttp_answers_them(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await log_in(alice, "user001")
    data = png()
    size = len(data)
    put(app, "outputs", "user001", "x.png", data)
    q = {"filename": "x.png"}
    r = await alice.get(VIEW, params=q, headers={"Range": "bytes=0-15"})
    assert r.status_code == 206
    assert r.content == data[:16]
    assert r.headers["content-range"] == f"bytes 0-15/{size}"
    assert r.headers["content-length"] == "16"
    r = await alice.get(VIEW, params=q, headers={"Range": "bytes=-4"})
    assert (r.status_code, r.content) == (206, data[-4:])
    r = await alice.get(VIEW, params=q, headers={"Range": f"bytes=10-{size + 100}"})
    assert (r.status_code, r.content) == (206, data[10:])
    for bad in (f"bytes={size}-", "bytes=5-2", "bytes=0-1,4-5", "pages=1-2"):
        r = await alice.get(VIEW, params=q, headers={"Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == f"bytes */{size}"
    etag = r.headers.get("etag") or (await alice.get(VIEW, params=q)).headers["etag"]
    same = {"Range": "bytes=0-3", "If-Range": etag}
    assert (await alice.get(VIEW, params=q, headers=same)).status_code == 206
    stale = {"Range": "bytes=0-3", "If-Range": '"0-0"'}
    r = await alice.get(VIEW, params=q, headers=stale)
    assert (r.status_code, r.content) == (200, data)


async def test_validators_give_304(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await log_in(alice, "user001")
    put(app, "outputs", "user001", "x.png", png(), mtime=T0)
    q = {"filename": "x.png"}
    first = await alice.get(VIEW, params=q)
    r = await alice.get(VIEW, params=q, headers={"If-None-Match": first.headers["etag"]})
    assert (r.status_code, r.content) == (304, b"")
    assert r.headers["etag"] == first.headers["etag"]
    r = await alice.get(VIEW, params=q, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    since = {"If-Modified-Since": first.headers["last-modified"]}
    assert (await alice.get(VIEW, params=q, headers=since)).status_code == 304
    older = {"If-Modified-Since": "Thu, 14 Jan 2027 08:00:00 GMT"}
    assert (await alice.get(VIEW, params=q, headers=older)).status_code == 200


PREVIEWS = [
    ("webp;50", "image/webp", b"RIFF"),
    ("jpeg;80", "image/jpeg", b"\xff\xd8"),
    ("jpeg", "image/jpeg", b"\xff\xd8"),  # quality 90
    ("bmp;10", "image/webp", b"RIFF"),  # unknown formats give webp
    ("jpeg;80&channel=a", "image/webp", b"RIFF"),  # so does a channel with an 'a'
]


async def test_previews_are_re_encoded(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await log_in(alice, "user001")
    put(app, "outputs", "user001", "capture/ref.png", png())
    for preview, media_type, magic in PREVIEWS:
        r = await alice.get(f"{VIEW}?filename=ref.png&subfolder=capture&preview={preview}")
        assert r.status_code == 200, preview
        assert r.content.startswith(magic), preview
        assert decode(r.content).size == (64, 48)
        # Only these three headers, as ComfyUI's re-encoded answers.
        assert r.headers["content-type"] == media_type, preview
        assert r.headers["content-disposition"] == 'filename="ref.png"'
        assert r.headers["content-length"] == str(len(r.content))
        assert "etag" not in r.headers
        assert "accept-ranges" not in r.headers


async def test_preview_quality_changes_the_encoding(app: FastAPI, alice: httpx.AsyncClient) -> None:
    image = Image.effect_noise((64, 64), 50).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    put(app, "outputs", "user001", "noise.png", out.getvalue())
    low = await alice.get(VIEW, params={"filename": "noise.png", "preview": "jpeg;10"})
    high = await alice.get(VIEW, params={"filename": "noise.png", "preview": "jpeg;95"})
    assert len(low.content) < len(high.content)


async def test_channels(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await log_in(alice, "user001")
    put(app, "outputs", "user001", "x.png", png((10, 20, 30, 128)))
    put(app, "outputs", "user001", "opaque.png", png((10, 20, 30)))
    rgb = await alice.get(VIEW, params={"filename": "x.png", "channel": "rgb"})
    assert rgb.headers["content-type"] == "image/png"
    image = decode(rgb.content)
    assert (image.mode, image.getpixel((0, 0))) == ("RGB", (10, 20, 30))
    alpha = decode((await alice.get(VIEW, params={"filename": "x.png", "channel": "a"})).content)
    assert (alpha.mode, alpha.getpixel((0, 0))) == ("RGBA", (0, 0, 0, 128))
    opaque = await alice.get(VIEW, params={"filename": "opaque.png", "channel": "a"})
    assert decode(opaque.content).getpixel((0, 0)) == (0, 0, 0, 255)
    # preview + channel=rgb: alpha dropped; any other channel sends the file itself.
    webp = await alice.get(VIEW, params={"filename": "x.png", "preview": "webp", "channel": "rgb"})
    assert decode(webp.content).mode == "RGB"
    plain = await alice.get(VIEW, params={"filename": "x.png", "channel": "rgba"})
    assert plain.content == png((10, 20, 30, 128))


async def test_re_encoding_a_non_image_is_refused(app: FastAPI, alice: httpx.AsyncClient) -> None:
    put(app, "inputs", "user001", "broken.png", b"this is not a png file, it is plain text")
    q = {"filename": "broken.png", "type": "input"}
    r = await alice.get(VIEW, params=q)
    assert (r.status_code, r.headers["content-type"]) == (200, "image/png")  # from the name
    for extra in ({"preview": "webp;50"}, {"channel": "rgb"}, {"channel": "a"}):
        r = await alice.get(VIEW, params=q | extra)
        assert (r.status_code, r.content) == (400, b"")


CONTENT_TYPES = [
    ("notes.txt", "text/plain"),
    ("clip.mp4", "video/mp4"),
    ("photo.webp", "image/webp"),
    ("page.html", "application/octet-stream"),
    ("page.htm", "application/octet-stream"),
    ("script.js", "application/octet-stream"),
    ("style.css", "application/octet-stream"),
    ("drawing.svg", "application/octet-stream"),
    ("page.xhtml", "application/octet-stream"),
    ("no_extension", "application/octet-stream"),
    ("data:text", "application/octet-stream"),
]


async def test_content_type_comes_from_the_extension(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    await log_in(alice, "user001")
    for name, media_type in CONTENT_TYPES:
        put(app, "outputs", "user001", name, b"<script>alert(1)</script>")
        r = await alice.get(VIEW, params={"filename": name})
        assert r.status_code == 200
        assert r.headers["content-type"] == media_type, name


async def test_names_a_header_cannot_carry_as_they_are(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    put(app, "outputs", "user001", "写真 é.png", b"x")
    put(app, "outputs", "user001", 'quote".png', b"y")
    r = await alice.get(VIEW, params={"filename": "写真 é.png"})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == (
        "filename=\"__ _.png\"; filename*=UTF-8''%E5%86%99%E7%9C%9F%20%C3%A9.png"
    )
    r = await alice.get(VIEW, params={"filename": 'quote".png'})
    assert r.headers["content-disposition"].startswith('filename="quote_.png"; filename*=')


REFUSALS = [
    ("", 404),  # no filename
    ("filename=", 400),
    ("filename=nothing.png", 404),
    ("filename=missing.png&subfolder=capture&type=output", 404),
    ("filename=secret.png&type=bogus", 400),
    ("filename=../secret.png", 400),
    ("filename=%2e%2e%2fsecret.png", 400),
    ("filename=..%5Csecret.png", 400),
    ("filename=/etc/passwd", 400),
    ("filename=%2Fetc%2Fpasswd", 400),
    ("filename=a..b.png", 400),
    ("filename=x%5Cy.png", 400),
    ("filename=x.png%00", 400),
    ("filename=.hidden", 400),
    ("filename=..%20%5Boutput%5D", 400),
    ("filename=%20%5Binput%5D", 400),
    ("filename=x.png&subfolder=../..", 403),
    ("filename=secret.png&subfolder=..", 403),
    ("filename=x.png&subfolder=/etc", 403),
    ("filename=x.png&subfolder=a/../../b", 403),
    ("filename=x.png&subfolder=..%5C..", 403),
    ("filename=x.png&subfolder=%2e%2e", 403),
    ("filename=secret.png&subfolder=../../outputs/user002", 403),
    ("filename=x.png%20%5Boutput%5D&subfolder=..", 403),
    ("filename=%252e%252e%252fsecret.png", 404),  # decoded once: a plain odd name
    ("filename=dir", 404),  # a folder is not a file
]


async def test_refusals_are_comfyuis_statuses_with_empty_bodies(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    await log_in(alice, "user001")
    put(app, "outputs", "user001", "x.png", b"alice")
    put(app, "outputs", "user001", "dir/inner.png", b"alice")
    (store(app).root / "secret.png").write_bytes(b"secret")
    (store(app).root / "outputs" / "secret.png").write_bytes(b"secret")
    put(app, "outputs", "user002", "secret.png", b"bob's")
    for query, status in REFUSALS:
        for url in (f"{VIEW}?{query}", f"/user001/view?{query}"):
            r = await alice.get(url)
            assert (r.status_code, r.content) == (status, b""), url
            assert "content-type" not in r.headers


async def test_a_planted_fifo_is_not_read(app: FastAPI, alice: httpx.AsyncClient) -> None:
    folder = store(app).user_dir("outputs", ALICE)
    folder.mkdir(parents=True)
    os.mkfifo(folder / "pipe.png")
    r = await alice.get(VIEW, params={"filename": "pipe.png"})
    assert r.status_code == 404


# -- who may see what -----------------------------------------------------------------------------


async def test_only_the_owner_reaches_their_files(
    app: FastAPI,
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    teacher: httpx.AsyncClient,
    nobody: httpx.AsyncClient,
) -> None:
    put(app, "outputs", "user001", "x.png", b"alice")
    put(app, "inputs", "user001", "in.png", b"alice")
    q = {"filename": "x.png"}
    assert (await alice.get(VIEW, params=q)).status_code == 200
    r = await nobody.get(VIEW, params=q)
    assert r.status_code == 401
    assert "basic" in r.headers["www-authenticate"].lower()
    for client in (bob, teacher):
        for url in (VIEW, "/user001/view"):
            assert (await client.get(url, params=q)).status_code == 404
            assert (await client.head(url, params=q)).status_code == 404
        assert (await client.get("/user001/internal/files/output")).status_code == 404
        assert (await upload(client, "y.png", b"y")).status_code == 404
    assert (await nobody.get("/user001/internal/files/input")).status_code == 401
    assert (await upload(nobody, "y.png", b"y")).status_code == 401
    assert tree(store(app).root / "inputs") == {"user001", "user001/in.png"}


@pytest.mark.parametrize(
    "query",
    [
        {"filename": "x.png"},
        {"filename": "x.png [output]"},
        {"filename": "in.png", "type": "input"},
        {"filename": "in.png [input]"},
        {"filename": "x.png", "subfolder": "../user001"},
        {"filename": "x.png", "subfolder": "../../outputs/user001"},
        {"filename": "../user001/x.png"},
        {"filename": "user001/x.png"},
        {"filename": "x.png", "subfolder": "/user001"},
    ],
)
async def test_bob_cannot_name_alices_files_from_his_own_page(
    app: FastAPI, bob: httpx.AsyncClient, query: dict[str, str]
) -> None:
    put(app, "outputs", "user001", "x.png", b"alice")
    put(app, "inputs", "user001", "in.png", b"alice")
    put(app, "outputs", "user002", "user001/.keep", b"")  # a folder named like her exists
    r = await bob.get("/user002/api/view", params=query)
    assert r.status_code in (400, 403, 404)
    assert b"alice" not in r.content


async def test_links_planted_in_a_folder_are_never_followed(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    await log_in(alice, "user001")
    bobs = put(app, "outputs", "user002", "b.png", b"bob's")
    root = store(app).root
    (root / "secret.png").write_bytes(b"secret")
    mine = put(app, "outputs", "user001", "mine.png", b"alice")
    folder = mine.parent
    (folder / "out.png").symlink_to(root / "secret.png")
    (folder / "bob.png").symlink_to(bobs)
    (folder / "rel.png").symlink_to("../user002/b.png")
    (folder / "self.png").symlink_to("mine.png")  # even one inside her own folder
    (folder / "bobdir").symlink_to(bobs.parent, target_is_directory=True)
    (folder / "rootdir").symlink_to("/", target_is_directory=True)
    inputs = store(app).user_dir("inputs", ALICE)
    inputs.parent.mkdir(parents=True)
    inputs.symlink_to(bobs.parent, target_is_directory=True)  # her whole input folder
    for query in (
        {"filename": "out.png"},
        {"filename": "bob.png"},
        {"filename": "rel.png"},
        {"filename": "self.png"},
        {"filename": "b.png", "subfolder": "bobdir"},
        {"filename": "passwd", "subfolder": "rootdir/etc"},
        {"filename": "b.png", "type": "input"},
        {"filename": "bob.png", "preview": "webp"},
        {"filename": "bob.png", "channel": "a"},
    ):
        r = await alice.get(VIEW, params=query)
        assert (r.status_code, r.content) == (404, b""), query
    assert (await alice.get(VIEW, params={"filename": "mine.png"})).content == b"alice"
    listing = await alice.get("/user001/internal/files/output")
    assert listing.json() == ["mine.png [output]"]
    assert (await alice.get("/user001/internal/files/input")).json() == []
    exists = input_exists(store(app), ALICE)
    assert not exists("b.png")
    assert not exists("out.png [output]")
    assert not exists("bobdir/b.png [output]")
    assert exists("mine.png [output]")


async def test_uploads_never_write_through_a_link(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await log_in(alice, "user001")
    bobs = put(app, "inputs", "user002", "b.png", b"bob's")
    folder = store(app).user_dir("inputs", ALICE)
    folder.mkdir(parents=True)
    (folder / "bobdir").symlink_to(bobs.parent, target_is_directory=True)
    (folder / "x.png").symlink_to(bobs)
    (folder / "dangling.png").symlink_to(bobs.parent / "new.png")
    r = await upload(alice, "y.png", b"alice", subfolder="bobdir")
    assert (r.status_code, r.content) == (400, b"")
    r = await upload(alice, "x.png", b"alice")
    assert r.json()["name"] == "x (1).png"
    r = await upload(alice, "dangling.png", b"alice")
    assert r.json()["name"] == "dangling (1).png"
    r = await upload(alice, "x.png", b"alice", overwrite="true")
    assert r.json()["name"] == "x.png"
    assert not (folder / "x.png").is_symlink()  # the link itself was replaced
    assert (folder / "x.png").read_bytes() == b"alice"
    assert tree(bobs.parent) == {"b.png"}
    assert bobs.read_bytes() == b"bob's"


# -- uploads --------------------------------------------------------------------------------------


async def test_upload_names_follow_comfyui(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await log_in(alice, "user001")
    folder = store(app).user_dir("inputs", ALICE)
    first, second, third = png((1, 1, 1)), png((2, 2, 2)), png((3, 3, 3))
    r = await upload(alice, "capture_upload.png", first, type="input")
    assert r.status_code == 200
    assert r.json() == {"name": "capture_upload.png", "subfolder": "", "type": "input"}
    r = await upload(alice, "capture_upload.png", first, type="input")
    assert r.json()["name"] == "capture_upload.png"  # same bytes: the existing file
    r = await upload(alice, "capture_upload.png", second)
    assert r.json() == {"name": "capture_upload (1).png", "subfolder": "", "type": "input"}
    r = await upload(alice, "capture_upload.png", third)
    assert r.json()["name"] == "capture_upload (2).png"
    r = await upload(alice, "capture_upload.png", second)
    assert r.json()["name"] == "capture_upload (1).png"  # found among the numbered ones
    assert tree(folder) == {
        "capture_upload.png",
        "capture_upload (1).png",
        "capture_upload (2).png",
    }
    assert (folder / "capture_upload (2).png").read_bytes() == third
    for flag in ("true", "1"):
        r = await upload(alice, "capture_upload.png", flag.encode(), overwrite=flag)
        assert r.json()["name"] == "capture_upload.png"
        assert (folder / "capture_upload.png").read_bytes() == flag.encode()
    r = await upload(alice, "capture_upload.png", b"new", overwrite="yes")
    assert r.json()["name"] == "capture_upload (3).png"
    r = await upload(alice, "noext", b"1")
    r = await upload(alice, "noext", b"2")
    assert r.json()["name"] == "noext (1)"


async def test_upload_type_and_subfolder(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await log_in(alice, "user001")
    r = await upload(alice, "sub_image.png", b"s", subfolder="capture_sub", type="input")
    assert r.json() == {"name": "sub_image.png", "subfolder": "capture_sub", "type": "input"}
    assert (store(app).user_dir("inputs", ALICE) / "capture_sub/sub_image.png").exists()
    r = await upload(alice, "temp_image.png", b"t", type="temp")
    assert r.json() == {"name": "temp_image.png", "subfolder": "", "type": "temp"}
    assert (store(app).user_dir("temp", ALICE) / "temp_image.png").read_bytes() == b"t"
    r = await upload(alice, "o.png", b"o", type="output", subfolder="a/b")
    assert r.json() == {"name": "o.png", "subfolder": "a/b", "type": "output"}
    view = await alice.get(VIEW, params={"filename": "o.png", "subfolder": "a/b"})
    assert view.content == b"o"
    # Uploads to the page's own format: `/view?type=input` shows them at once.
    view = await alice.get(
        VIEW, params={"filename": "sub_image.png", "subfolder": "capture_sub", "type": "input"}
    )
    assert view.content == b"s"
    r = await upload(alice, "x.png", b"x", type="bogus")
    assert (r.status_code, r.content) == (400, b"")
    r = await upload(alice, "x.png", b"x", type="")
    assert r.status_code == 400


UPLOAD_REFUSALS = [
    ("../../x.png", ""),
    ("../inputs/user002/x.png", ""),
    ("/etc/passwd", ""),
    ("a/b.png", ""),
    ("..\\..\\x.png", ""),
    ("a..b.png", ""),
    (".hidden", ""),
    (".", ""),
    ("x" * 250 + ".png", ""),
    ("x.png", ".."),
    ("x.png", "../user002"),
    ("x.png", "../../inputs/user002"),
    ("x.png", "/tmp"),
    ("x.png", "a/../.."),
    ("x.png", "..\\.."),
    ("x.png", ".hidden"),
    ("x.png", "a\x00b"),
    ("x.png", "/".join("d" * 9)),  # deeper than 8 folders
]


async def test_upload_names_that_leave_the_folder_are_refused(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    await log_in(alice, "user001")
    put(app, "inputs", "user002", "keep.png", b"bob's")
    for filename, subfolder in UPLOAD_REFUSALS:
        r = await upload(alice, filename, b"evil", subfolder=subfolder)
        assert (r.status_code, r.content) == (400, b""), (filename, subfolder)
    assert tree(store(app).root) == {"inputs", "inputs/user002", "inputs/user002/keep.png"}


async def test_the_ie_path_of_a_filename_is_dropped(app: FastAPI, alice: httpx.AsyncClient) -> None:
    r = await upload(alice, "C:\\fakepath\\photo.png", b"p")
    assert r.json()["name"] == "photo.png"


async def test_a_form_without_an_image_file_is_refused(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    await log_in(alice, "user001")
    r = await alice.post(UPLOAD, files={"other": ("x.png", b"x")}, data={"type": "input"})
    assert (r.status_code, r.content) == (400, b"")
    r = await alice.post(UPLOAD, data={"image": "not a file"})
    assert (r.status_code, r.content) == (400, b"")
    r = await alice.post(UPLOAD, files={"image": ("", b"x")})
    assert r.status_code == 400
    r = await alice.post(UPLOAD, json={"image": "x"})
    assert (r.status_code, r.content) == (400, b"")
    r = await alice.post(
        UPLOAD, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert r.status_code == 400
    r = await alice.post(
        UPLOAD, files={"image": ("x.png", b"x"), "type": ("t", b"input")}
    )  # a field sent as a file
    assert r.status_code == 400
    assert tree(store(app).root / "inputs") == set()


async def test_content_is_not_checked(app: FastAPI, alice: httpx.AsyncClient) -> None:
    r = await upload(alice, "broken.png", b"this is not a png file")
    assert r.json() == {"name": "broken.png", "subfolder": "", "type": "input"}


@pytest.fixture
async def small_app(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        redis_server, prefix, data_dir=tmp_path / "data", max_upload_bytes=1000
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await application.state.accounts.add("user001", Role.PARTICIPANT, accounts.PASSWORD)
        yield application


async def test_oversized_uploads_are_refused_and_leave_nothing(small_app: FastAPI) -> None:
    async with accounts.client_for(small_app, "user001") as client:
        r = await upload(client, "ok.png", b"x" * 1000)
        assert r.status_code == 200
        for size in (1001, 50_000, 500_000):  # in the form's slack, past it, far past it
            r = await upload(client, "big.png", b"x" * size)
            assert r.status_code == 413, size
            assert "1000 bytes" in r.json()["error"]["message"]

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length to trust
            yield b'--zz\r\nContent-Disposition: form-data; name="image"; filename="c.png"'
            yield b"\r\n\r\n"
            for _ in range(100):
                yield b"x" * 10_000
            yield b"\r\n--zz--\r\n"

        r = await client.post(
            UPLOAD, content=chunked(), headers={"content-type": "multipart/form-data; boundary=zz"}
        )
        assert r.status_code == 413
        mask_ref = json.dumps({"filename": "ok.png", "type": "input"})
        r = await upload(client, "m.png", b"x" * 2000, url=MASK, original_ref=mask_ref)
        assert r.status_code == 413
    assert tree(store(small_app).root) == {"inputs", "inputs/user001", "inputs/user001/ok.png"}


# -- /upload/mask ---------------------------------------------------------------------------------


def original_png() -> bytes:
    info = PngInfo()
    info.add_text("workflow", '{"nodes": []}')
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 100, 50)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def mask_png(size: tuple[int, int] = (8, 6)) -> bytes:
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.putpixel((0, 0), (0, 0, 0, 0))
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


async def test_mask_upload_applies_the_alpha(app: FastAPI, alice: httpx.AsyncClient) -> None:
    put(app, "inputs", "user001", "capture_upload.png", original_png())
    ref = json.dumps({"filename": "capture_upload.png", "subfolder": "", "type": "input"})
    r = await upload(
        alice,
        "clipspace-mask-1.png",
        mask_png(),
        url=MASK,
        type="input",
        subfolder="clipspace",
        original_ref=ref,
    )
    assert r.status_code == 200
    assert r.json() == {"name": "clipspace-mask-1.png", "subfolder": "clipspace", "type": "input"}
    stored = store(app).user_dir("inputs", ALICE) / "clipspace/clipspace-mask-1.png"
    image = decode(stored.read_bytes())
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (200, 100, 50, 0)
    assert image.getpixel((1, 1)) == (200, 100, 50, 255)
    assert image.info["workflow"] == '{"nodes": []}'
    # The original is untouched; the page reads the result back through /view.
    view = await alice.get(
        VIEW, params={"filename": "clipspace-mask-1.png [input]", "subfolder": "clipspace"}
    )
    assert view.content == stored.read_bytes()


async def test_mask_original_defaults_to_output_and_honours_annotations(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    put(app, "outputs", "user001", "gen.png", original_png())
    r = await upload(
        alice, "m.png", mask_png(), url=MASK, original_ref=json.dumps({"filename": "gen.png"})
    )
    assert r.status_code == 200
    r = await upload(
        alice,
        "m2.png",
        mask_png(),
        url=MASK,
        original_ref=json.dumps({"filename": "gen.png [output]", "type": "input"}),
    )
    assert r.status_code == 200


MASK_REFUSALS: list[tuple[str | None, int]] = [
    (None, 400),
    ("not json", 400),
    ("[1, 2]", 400),
    (json.dumps({"subfolder": ""}), 400),
    (json.dumps({"filename": 5}), 400),
    (json.dumps({"filename": "../x.png", "type": "input"}), 400),
    (json.dumps({"filename": "/etc/passwd"}), 400),
    (json.dumps({"filename": "x.png", "type": "bogus"}), 400),
    (json.dumps({"filename": "b.png", "subfolder": "../../inputs/user002", "type": "input"}), 403),
    (json.dumps({"filename": "b.png", "subfolder": "/", "type": "input"}), 403),
    (json.dumps({"filename": "b.png [input]"}), 404),  # her input folder, not bob's
    (json.dumps({"filename": "missing.png", "type": "input"}), 404),
    (json.dumps({"filename": "link.png", "type": "input"}), 404),
]


async def test_mask_original_refs_stay_in_the_callers_folder(
    app: FastAPI, alice: httpx.AsyncClient
) -> None:
    await log_in(alice, "user001")
    bobs = put(app, "inputs", "user002", "b.png", original_png())
    put(app, "inputs", "user001", "x.png", original_png())
    (store(app).user_dir("inputs", ALICE) / "link.png").symlink_to(bobs)
    for original_ref, status in MASK_REFUSALS:
        fields = {"type": "input"} | ({"original_ref": original_ref} if original_ref else {})
        r = await upload(alice, "mask.png", mask_png(), url=MASK, **fields)
        assert (r.status_code, r.content) == (status, b""), original_ref
    assert tree(store(app).user_dir("inputs", ALICE)) == {"x.png", "link.png"}


async def test_a_mask_that_does_not_fit_is_refused(app: FastAPI, alice: httpx.AsyncClient) -> None:
    put(app, "inputs", "user001", "x.png", original_png())
    ref = json.dumps({"filename": "x.png", "type": "input"})
    for mask in (mask_png((4, 4)), b"not an image"):
        r = await upload(alice, "mask.png", mask, url=MASK, original_ref=ref)
        assert (r.status_code, r.content) == (400, b"")
    assert tree(store(app).user_dir("inputs", ALICE)) == {"x.png"}


# -- /internal/files ------------------------------------------------------------------------------


async def test_internal_files_lists_newest_first(app: FastAPI, alice: httpx.AsyncClient) -> None:
    put(app, "inputs", "user001", "example.png", b"1", mtime=T0)
    put(app, "inputs", "user001", "capture_upload (1).png", b"2", mtime=T0 + 2)
    put(app, "inputs", "user001", "capture_upload.png", b"3", mtime=T0 + 3)
    put(app, "inputs", "user001", "broken.png", b"4", mtime=T0 + 4)
    put(app, "inputs", "user001", "notes.txt", b"5", mtime=T0 + 1)
    put(app, "inputs", "user001", ".hidden.png", b"6", mtime=T0 + 9)
    put(app, "inputs", "user001", "clipspace/mask.png", b"7", mtime=T0 + 9)
    put(app, "inputs", "user002", "bobs.png", b"8", mtime=T0 + 9)
    r = await alice.get("/user001/internal/files/input")
    assert r.status_code == 200
    assert r.json() == [
        "broken.png [input]",
        "capture_upload.png [input]",
        "capture_upload (1).png [input]",
        "notes.txt [input]",
        "example.png [input]",
    ]
    assert (await alice.get("/user001/internal/files/output")).json() == []
    assert (await alice.get("/user001/internal/files/temp")).json() == []
    r = await alice.get("/user001/internal/files/models")
    assert (r.status_code, r.json()) == (400, {"error": "Invalid directory type"})
    # /internal is not aliased under /api.
    assert (await alice.get("/user001/api/internal/files/input")).status_code == 404


async def test_internal_files_after_uploads(app: FastAPI, alice: httpx.AsyncClient) -> None:
    await upload(alice, "a.png", b"a", type="temp")
    assert (await alice.get("/user001/internal/files/temp")).json() == ["a.png [temp]"]


# -- LoadImage's list and prompt validation -------------------------------------------------------


async def test_input_images_as_loadimage_lists_them(app: FastAPI) -> None:
    for name in (
        "example.png",
        "capture_upload.png",
        "capture_upload (1).png",
        "broken.png",
        "photo.JPG",
        "anim.webp",
        "notes.txt",
        "model.fbx",
        "noext",
        ".hidden.png",
        "sub/nested.png",
        "sub/deeper/d.jpg",
        ".secret/s.png",
    ):
        put(app, "inputs", "user001", name, b"x")
    put(app, "inputs", "user002", "bobs.png", b"x")
    folder = store(app).user_dir("inputs", ALICE)
    (folder / "link.png").symlink_to(folder / "example.png")
    (folder / "linkdir").symlink_to(folder / "sub", target_is_directory=True)
    files = store(app)
    assert await input_images(files, ALICE) == [
        "anim.webp",
        "broken.png",
        "capture_upload (1).png",
        "capture_upload.png",
        "example.png",
        "photo.JPG",
    ]
    assert await input_images(files, ALICE, include_subfolders=True) == [
        "anim.webp",
        "broken.png",
        "capture_upload (1).png",
        "capture_upload.png",
        "example.png",
        "photo.JPG",
        "sub/deeper/d.jpg",
        "sub/nested.png",
    ]
    assert await input_images(files, BOB) == ["bobs.png"]
    assert await input_images(files, UserId("teacher")) == []


async def test_input_exists_answers_safely(app: FastAPI) -> None:
    put(app, "inputs", "user001", "x.png", b"x")
    put(app, "inputs", "user001", "sub/y.png", b"y")
    put(app, "outputs", "user001", "out.png", b"o")
    put(app, "temp", "user001", "t.png", b"t")
    put(app, "inputs", "user002", "bob.png", b"b")
    (store(app).root / "secret.png").write_bytes(b"s")
    exists = input_exists(store(app), ALICE)
    for name in ("x.png", "sub/y.png", "out.png [output]", "t.png [temp]", "x.png [input]"):
        assert exists(name), name
    for name in (
        "out.png",
        "missing.png",
        "sub",
        "sub/",
        "../user002/bob.png",
        "bob.png",
        "../../secret.png",
        "/etc/passwd",
        "sub\\y.png",
        "x.png\x00",
        "",
        " [output]",
        "x.png[output]",
        "../secret.png [output]",
        ".hidden",
    ):
        assert not exists(name), name
    assert not exists(5)  # type: ignore[arg-type]
