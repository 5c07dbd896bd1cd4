"""ComfyUI's `POST /<user>/api/upload/image` (and `/upload/mask`) with any multipart body:
file names, subfolders, types and overwrite flags of every kind, any bytes, headers a browser
would escape sent raw. Never a 5xx; a refused upload changes no file; an accepted one changes
files only in the caller's own folder of the type it answers, where its bytes now are."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.reliability.fuzz.effects import changes, files, no_server_error, outside
from tests.reliability.fuzz.stack import Stack
from tests.reliability.fuzz.strategies import FOLDER, NAME, PLAIN, fuzz
from tests.reliability.fuzz.tally import answered, count

EXAMPLES = 150
BOUNDARY = "cwfuzz0a1b2c3"
FOLDERS = {"input": "inputs", "output": "outputs", "temp": "temp"}
REFUSALS = {400, 403, 404, 413}
Part = tuple[str, str | None, str, bytes]  # field name, file name (a file's), content type, bytes


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (4, 3), (10, 20, 30, 128)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()
FLAG = st.sampled_from(["true", "false", "1", "0", "", "TRUE", "yes"]) | st.text(max_size=6)
TYPE = st.sampled_from([*FOLDERS, "", "inputs", "../output", "INPUT"]) | st.text(max_size=8)
CONTENT = st.just(PNG) | st.binary(max_size=300) | st.just(b"")
ORIGINAL = json.dumps({"filename": "x.png", "subfolder": "", "type": "input"})
REF = st.fixed_dictionaries({"filename": NAME, "subfolder": NAME, "type": TYPE}).map(
    json.dumps
) | st.text(max_size=30)


@st.composite
def uploads(draw: st.DrawFn) -> dict[str, Any]:
    """One upload: the endpoint, the fields as (name, filename, content type, bytes)."""
    mask = draw(st.integers(0, 3)) == 0
    raw = draw(st.booleans())  # header values as sent by a script, or escaped as a browser does
    content = draw(st.just(PNG) | CONTENT if mask else CONTENT)  # a mask must be an image
    parts: list[Part] = [("image", _header(draw(PLAIN | NAME), raw),
              draw(st.sampled_from(["image/png", ""])), content)]  # fmt: skip
    fields = (("type", st.sampled_from(list(FOLDERS)) | TYPE), ("subfolder", FOLDER | NAME),
              ("overwrite", FLAG))  # fmt: skip
    for field, value in fields:
        if draw(st.booleans()):
            parts.append((field, None, "", draw(value).encode("utf-8", "surrogatepass")))
    if mask:
        ref = draw(st.just(ORIGINAL) | REF)  # the user's own x.png, or anything
        parts.append(("original_ref", None, "", ref.encode("utf-8", "surrogatepass")))
    return {"path": "/user001/api/upload/" + ("mask" if mask else "image"), "parts": parts}


def _header(value: str, raw: bool) -> str:
    if raw:
        return value
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart(parts: list[Part]) -> bytes:
    out = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        out += (head + "\r\n").encode("utf-8", "surrogatepass") + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Iterator[httpx.Client]:
    """user001, with a file of their own and one of user002's on disk to collide with."""
    for user in ("user001", "user002"):
        folder = stack.data_dir / "inputs" / user
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "x.png").write_bytes(PNG)
    with stack.client("user001") as client:
        yield client


@given(upload=uploads())
@fuzz(EXAMPLES)
def test_an_upload_lands_in_its_senders_folder_or_changes_nothing(
    stack: Stack, alice: httpx.Client, upload: dict[str, Any]
) -> None:
    target = "upload " + upload["path"].rsplit("/", 1)[1]
    before = files(stack)
    count(target)
    r = alice.post(
        upload["path"],
        content=multipart(upload["parts"]),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    answered(target, r.status_code)
    no_server_error(r, upload)
    changed = changes(before, files(stack))
    if r.status_code != 200:
        assert r.status_code in REFUSALS, r.text  # never 401/404 for the route: logged in
        assert changed == set(), (r.status_code, changed)
        return
    answer = r.json()
    assert outside(changed, "user001", [FOLDERS[answer["type"]]]) == set(), changed
    stored = stack.data_dir / FOLDERS[answer["type"]] / "user001"
    stored = stored / answer["subfolder"] / answer["name"]
    assert stored.resolve().is_relative_to(stack.data_dir.resolve() / FOLDERS[answer["type"]])
    if target == "upload image":
        assert stored.read_bytes() == upload["parts"][0][3]
