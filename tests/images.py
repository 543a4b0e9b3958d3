"""Small valid images and media built in code, so tests need no binary fixtures."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageChops


def png_bytes(width: int = 2, height: int = 2, padding: int = 0) -> bytes:
    """A valid PNG; ``padding`` adds an ancillary chunk to reach a chosen size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    parts = [
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        chunk(b"IDAT", zlib.compress(raw)),
    ]
    if padding:
        parts.append(chunk(b"teXt", b"pad\x00" + b"x" * padding))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def jpeg_bytes() -> bytes:
    """Bytes that start like a JPEG (SOI + APP0); enough for magic-byte checks."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def amr_bytes(size: int = 64) -> bytes:
    """An AMR-looking voice payload of ``size`` bytes."""
    head = b"#!AMR\n"
    return head + b"\x3c" * (size - len(head))


def same_picture(old: bytes, new: bytes) -> bool:
    """Whether two screenshots look the same: Chromium's rasteriser may move a few pixels of
    a picture by a shade between runs, which should not make the committed file change."""
    first, second = Image.open(io.BytesIO(old)), Image.open(io.BytesIO(new))
    if first.size != second.size:
        return False
    difference = ImageChops.difference(first.convert("RGB"), second.convert("RGB"))
    changed = sum(difference.convert("L").point(lambda v: 255 if v > 8 else 0).histogram()[1:])
    return changed == 0


def keep_screenshot(path: Path, shot: bytes) -> None:
    """Write ``shot`` to the docs' ``path`` only when it looks different from the file there,
    so running the tests leaves a clean checkout unless a page really changed."""
    if not path.exists() or not same_picture(path.read_bytes(), shot):
        path.write_bytes(shot)
