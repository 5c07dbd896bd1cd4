"""How ComfyUI 0.25.0 reads its file requests, as pure functions (no I/O).

`/view`, `/upload/image`, `/upload/mask` and `/internal/files` name a file ComfyUI's way: a
`type` (output | input | temp), a `subfolder`, and a `filename` that may carry a folder
annotation (`"x.png [input]"`, which wins over `type`). Here such a name becomes a `FileRef`,
one of the participant's own folders plus a safe relative path, or an `UnsafePath` with the
status ComfyUI answers (400 bad filename or type, 403 escaping subfolder, 404 no filename).
The folder is always the caller's: nothing in a request can name a user.

What else ComfyUI decides from the request is here too: the answer's form (the file, a
re-encoded `preview=`, one `channel=`), upload names (`"x (1).png"`), the content type from the
extension, byte ranges and cache validators (aiohttp's `ETag` and `Last-Modified`), and the
shape of `/internal/files` listings. Where we are stricter than ComfyUI it is on purpose and
said so: hidden names, backslashes and control characters are refused, and script-capable types
are always sent as downloads.
"""

from __future__ import annotations

import email.utils
import mimetypes
import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import quote

from queue_manager.core.errors import UnsafePath
from queue_manager.core.paths import MAX_COMPONENT_BYTES, MAX_DEPTH, Kind, requested_path

ComfyType = Literal["output", "input", "temp"]
KINDS: dict[ComfyType, Kind] = {"output": "outputs", "input": "inputs", "temp": "temp"}
MAX_NUMBERED = 10_000  # "x (1).png" ... ; ComfyUI counts without end

# ComfyUI sends these as downloads (its list), and we add the other types a browser would run
# script in: every participant's page shares one origin, so none of them may render inline.
_DOWNLOAD_ONLY = {
    "text/html",
    "text/html-sandboxed",
    "application/xhtml+xml",
    "text/javascript",
    "text/css",
    "application/javascript",
    "image/svg+xml",
    "text/xml",
    "application/xml",
}
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


def _mime_table() -> mimetypes.MimeTypes:
    """Python's built-in table plus the types ComfyUI registers at start-up
    (`utils/mime_types.py`); a private instance, so the host's /etc/mime.types plays no part."""
    table = mimetypes.MimeTypes()
    for media_type, ext in (
        ("application/javascript; charset=utf-8", ".js"),
        ("image/webp", ".webp"),
        ("image/svg+xml", ".svg"),
        ("application/safetensors", ".safetensors"),
        ("application/safetensors", ".sft"),
        ("application/pytorch", ".pt"),
        ("application/pytorch", ".pth"),
        ("application/pickle", ".ckpt"),
        ("application/pickle", ".pkl"),
        ("application/gguf", ".gguf"),
        ("application/yaml", ".yaml"),
        ("application/yaml", ".yml"),
    ):
        table.add_type(media_type, ext)
    return table


_MIME = _mime_table()
# folder_paths.extension_mimetypes_cache starts with these two answers.
_CONTENT_CLASS = {"webp": "image", "fbx": "model"}


@dataclass(frozen=True)
class FileRef:
    """A file in one of the caller's folders: ComfyUI's type and a safe relative path."""

    type: ComfyType
    path: PurePosixPath

    @property
    def kind(self) -> Kind:
        return KINDS[self.type]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Preview:
    """`preview=webp;50`: the image re-encoded (Pillow), `to_rgb` dropping the alpha first."""

    format: Literal["webp", "jpeg"]
    quality: int
    to_rgb: bool

    @property
    def media_type(self) -> str:
        return f"image/{self.format}"


Rendering = Preview | Literal["file", "rgb", "a"]
"""How `/view` answers: the file itself, a preview, or a PNG of the RGB or alpha channel."""


class RangeNotSatisfiable(ValueError):
    """A `Range` aiohttp answers with 416."""


# -- names ----------------------------------------------------------------------------------------


def comfy_type(value: str) -> ComfyType:
    """`output`, `input` or `temp`; anything else is ComfyUI's 400."""
    if value not in KINDS:
        raise UnsafePath(value, "unknown type", status=400)
    return value


def split_annotation(name: str) -> tuple[str, ComfyType | None]:
    """`"x.png [output]"` -> `("x.png", "output")`, as `folder_paths.annotated_filepath`.

    Like ComfyUI it cuts one character more than the tag (the space), whatever it is.
    """
    for kind in KINDS:
        tag = f"[{kind}]"
        if name.endswith(tag):
            return name[: -(len(tag) + 1)], kind
    return name, None


def view_target(query: Mapping[str, str]) -> FileRef:
    """The file `GET /view` names, checked in ComfyUI's order.

    No `filename`: 404. An empty name, one starting with '/' or holding '..': 400. An unknown
    `type` (when no annotation names the folder): 400. A `subfolder` leaving the folder: 403.
    As ComfyUI, only the last part of a filename with '/' is used.
    """
    if "filename" not in query:
        raise UnsafePath("", "no filename", status=404)
    name, annotated = split_annotation(query["filename"])
    _check_filename(name)
    kind = annotated or comfy_type(query.get("type", "output"))
    return FileRef(kind, requested_path(query.get("subfolder", ""), posixpath.basename(name)))


def mask_original(ref: object) -> FileRef:
    """The image `original_ref` of `POST /upload/mask` names (JSON `{filename, subfolder,
    type}`), with `/view`'s rules; its type defaults to `output`, as in ComfyUI."""
    if not isinstance(ref, Mapping):
        raise UnsafePath(str(ref), "original_ref is not an object", status=400)
    filename, subfolder, kind = ref.get("filename"), ref.get("subfolder", ""), ref.get("type")
    if not isinstance(filename, str) or not isinstance(subfolder, str):
        raise UnsafePath(str(filename), "original_ref needs a filename", status=400)
    name, annotated = split_annotation(filename)
    _check_filename(name)
    if annotated is None:
        annotated = comfy_type(kind if isinstance(kind, str) else "output")
    return FileRef(annotated, requested_path(subfolder, name))


def upload_target(type_field: str | None, subfolder: str, filename: str) -> FileRef:
    """Where `POST /upload/image` (and `/upload/mask`) puts a file: type `input` unless given.

    ComfyUI answers 400 to every upload name that leaves the folder (a subfolder too, unlike
    `/view`'s 403), so every refusal here is 400. The uploaded file's own filename must be a
    plain name: no folders, no '..', nothing hidden.
    """
    kind = comfy_type("input" if type_field is None else type_field)
    if not filename:
        raise UnsafePath(filename, "no filename", status=400)
    try:
        path = requested_path(subfolder, filename)
    except UnsafePath as exc:
        raise UnsafePath(exc.name, exc.reason, status=400) from exc
    if len(path.parts) > MAX_DEPTH + 1:
        raise UnsafePath(subfolder, f"more than {MAX_DEPTH} folders deep", status=400)
    if any(len(part.encode()) > MAX_COMPONENT_BYTES for part in path.parts):
        raise UnsafePath(str(path), f"a name is longer than {MAX_COMPONENT_BYTES} bytes")
    return FileRef(kind, path)


def loader_ref(value: str) -> FileRef | None:
    """The file a loader node's widget value names (`"x.png"`, `"sub/x.png"`,
    `"x.png [output]"`), as `folder_paths.exists_annotated_filepath` reads it; None if unsafe."""
    name, annotated = split_annotation(value)
    subfolder, _, filename = name.rpartition("/")
    try:
        return FileRef(annotated or "input", requested_path(subfolder, filename))
    except UnsafePath:
        return None


def _check_filename(name: str) -> None:
    if not name or name.startswith("/") or ".." in name:
        raise UnsafePath(name, "invalid filename", status=400)


def is_overwrite(value: str | None) -> bool:
    """ComfyUI replaces an existing upload only for `overwrite=true` or `overwrite=1`."""
    return value in ("true", "1")


def numbered_names(filename: str) -> Iterator[str]:
    """The names an upload tries in turn: `x.png`, `x (1).png`, `x (2).png`, ..."""
    stem, ext = posixpath.splitext(filename)
    yield filename
    for i in range(1, MAX_NUMBERED):
        yield f"{stem} ({i}){ext}"


def annotated(name: str, kind: ComfyType) -> str:
    """0.25.0's `/internal/files` entry: `"x.png [input]"`."""
    return f"{name} [{kind}]"


def newest_first(entries: Iterable[tuple[int, str]]) -> list[str]:
    """Names of `(mtime_ns, name)` entries, newest first as `/internal/files` sorts them (ties
    by name, so the order never depends on the disk's)."""
    return [name for _, name in sorted(entries, key=lambda e: (-e[0], e[1]))]


# -- what the answer is ---------------------------------------------------------------------------


def rendering(query: Mapping[str, str]) -> Rendering:
    """`preview=` wins over `channel=`, as in ComfyUI; unknown channels send the file.

    `preview=<format>;<quality>`: format webp or jpeg (anything else, or any channel holding
    an 'a', gives webp); quality the last `;` part when it is a number (default 90).
    """
    channel = query.get("channel", "")
    if "preview" in query:
        parts = query["preview"].split(";")
        fmt: Literal["webp", "jpeg"] = "jpeg" if parts[0] == "jpeg" else "webp"
        if "a" in channel:
            fmt = "webp"
        last = parts[-1]
        quality = int(last) if last.isascii() and last.isdigit() and len(last) <= 3 else 90
        return Preview(fmt, min(quality, 100), to_rgb=fmt == "jpeg" or channel == "rgb")
    if channel == "rgb":
        return "rgb"
    if channel == "a":
        return "a"
    return "file"


def content_type(name: str) -> str:
    """The type `/view` sends, from the extension only (a text file named `.png` is
    `image/png`, as in ComfyUI); script-capable types become `application/octet-stream`."""
    guessed = _guess(name, strict=True) or "application/octet-stream"
    if guessed.split(";")[0].strip().lower() in _DOWNLOAD_ONLY:
        return "application/octet-stream"
    return guessed


def is_image(name: str) -> bool:
    """`folder_paths.filter_files_content_types(..., ["image"])`: LoadImage's list filter."""
    extension = name.split(".")[-1]
    if extension in _CONTENT_CLASS:
        return _CONTENT_CLASS[extension] == "image"
    guessed = _guess(name, strict=False)
    return guessed is not None and guessed.split("/")[0] == "image"


def _guess(name: str, *, strict: bool) -> str | None:
    # The prefix keeps a name such as "data:image/png,x" from being read as a data: URL.
    return _MIME.guess_type("_" + name, strict=strict)[0]


def content_disposition(name: str) -> str:
    """ComfyUI's `filename="x.png"` (inline); names a header cannot carry as they are get the
    RFC 6266 `filename*` form beside an ASCII stand-in."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f'filename="{name}"'
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# -- validators and ranges (aiohttp's FileResponse) -----------------------------------------------


def etag(mtime_ns: int, size: int) -> str:
    """aiohttp's strong ETag: modification time in ns and size, in hex."""
    return f'"{mtime_ns:x}-{size:x}"'


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _parse_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def not_modified(headers: Mapping[str, str], tag: str, mtime: float) -> bool:
    """`If-None-Match` (weak comparison, `*` matches) or else `If-Modified-Since` -> 304."""
    if (wanted := headers.get("if-none-match")) is not None:
        tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
        return "*" in tags or tag in tags
    if (since := headers.get("if-modified-since")) is not None:
        stamp = _parse_date(since)
        return stamp is not None and mtime <= stamp
    return False


def byte_range(
    headers: Mapping[str, str], tag: str, mtime: float, size: int
) -> tuple[int, int] | None:
    """The `(start, end)` (end exclusive) a `Range` asks for, None for the whole file.

    As aiohttp: one range only (`bytes=a-b`, `bytes=a-`, `bytes=-n`), anything else or a start
    past the end is RangeNotSatisfiable (416); an `If-Range` that no longer matches the file
    means the whole file.
    """
    header = headers.get("range")
    if header is None:
        return None
    if (if_range := headers.get("if-range")) is not None:
        if if_range.startswith(('"', "W/")):
            if if_range != tag:
                return None
        else:
            stamp = _parse_date(if_range)
            if stamp is None or mtime > stamp:
                return None
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        raise RangeNotSatisfiable(header)
    first, last = match.groups()
    if not first:
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
        if last and int(last) < start:
            raise RangeNotSatisfiable(header)
    if start >= size:
        raise RangeNotSatisfiable(header)
    return start, end
