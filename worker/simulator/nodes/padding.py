"""Writes an encoded PNG or WEBP file grown to a target size with ignorable padding chunks.

Used to simulate multi-hundred-MB outputs without holding them in memory: the padding is
written as the same 1 MiB chunk over and over, so memory stays flat whatever the target.
The result stays a valid file (PNG ancillary private chunks before IEND; RIFF `JUNK` chunks
at the end of a WEBP), which image readers skip.
"""

from __future__ import annotations

import functools
import random
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20
_PNG_IEND = b"\x00\x00\x00\x00IEND\xae\x42\x60\x82"
# Lowercase 1st/2nd letters: ancillary and private, so decoders skip it; 4th: safe to copy.
_PNG_PAD_TYPE = b"paDd"
_PNG_CHUNK_OVERHEAD = 12  # length, type, CRC
_RIFF_PAD_TYPE = b"JUNK"
_RIFF_CHUNK_OVERHEAD = 8  # FourCC, length
_RIFF_MAX = 0xFFFFFFFF


@functools.cache
def _filler() -> bytes:
    # Random rather than zeros so that transports cannot compress the padding away.
    return random.Random(0x5EED).randbytes(BLOCK)


def _plan(padding: int, overhead: int, *, even: bool = False) -> tuple[int, int]:
    """(number of full-BLOCK chunks, payload of the last chunk or 0) for `padding` bytes."""
    if padding <= 0:
        return 0, 0
    full, rest = divmod(padding, BLOCK + overhead)
    last = rest - overhead
    if even:
        last -= last % 2
    return full, max(last, 0)


def write_png(path: Path, encoded: bytes, target_size: int) -> None:
    """Write the PNG `encoded` to `path`, padded to about `target_size` bytes."""
    if not encoded.endswith(_PNG_IEND):
        raise ValueError("not a PNG file ending in IEND")
    full, last = _plan(target_size - len(encoded), _PNG_CHUNK_OVERHEAD)
    block = memoryview(_filler())
    with path.open("wb") as out:
        out.write(encoded[: -len(_PNG_IEND)])
        if full:
            crc = zlib.crc32(block, zlib.crc32(_PNG_PAD_TYPE))
            for _ in range(full):
                _write_png_chunk(out, block, crc)
        if last:
            tail = block[:last]
            _write_png_chunk(out, tail, zlib.crc32(tail, zlib.crc32(_PNG_PAD_TYPE)))
        out.write(_PNG_IEND)


def _write_png_chunk(out: BinaryIO, payload: memoryview, crc: int) -> None:
    out.write(struct.pack(">I", len(payload)) + _PNG_PAD_TYPE)
    out.write(payload)
    out.write(struct.pack(">I", crc))


def write_webp(path: Path, encoded: bytes, target_size: int) -> None:
    """Write the WEBP `encoded` to `path`, padded to about `target_size` bytes."""
    if encoded[:4] != b"RIFF" or encoded[8:12] != b"WEBP":
        raise ValueError("not a RIFF WEBP file")
    if target_size - 8 > _RIFF_MAX:
        raise ValueError(f"a WEBP file cannot exceed {_RIFF_MAX + 8} bytes")
    full, last = _plan(target_size - len(encoded), _RIFF_CHUNK_OVERHEAD, even=True)
    padding = full * (BLOCK + _RIFF_CHUNK_OVERHEAD)
    if last:
        padding += last + _RIFF_CHUNK_OVERHEAD
    block = memoryview(_filler())
    with path.open("wb") as out:
        # The RIFF header carries the size of everything after it, padding included.
        out.write(b"RIFF" + struct.pack("<I", len(encoded) - 8 + padding))
        out.write(encoded[8:])
        for _ in range(full):
            _write_riff_chunk(out, block)
        if last:
            _write_riff_chunk(out, block[:last])


def _write_riff_chunk(out: BinaryIO, payload: memoryview) -> None:
    out.write(_RIFF_PAD_TYPE + struct.pack("<I", len(payload)))
    out.write(payload)
