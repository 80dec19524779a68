"""Charts for email as PNG images: mail clients show inline PNGs (cid:) but neither SVG nor scripts,
and nothing may be loaded from elsewhere. A bar chart needs no drawing library: rows of pixels,
zlib-compressed, in the PNG container."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

BAR = (37, 99, 235)  # the UI's accent blue
TRACK = (229, 231, 235)
BACKGROUND = (255, 255, 255)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, pixel_rows: Sequence[bytes]) -> bytes:
    raw = b"".join(b"\x00" + row for row in pixel_rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def bars(values: Sequence[float], *, width: int = 360, bar_height: int = 18, gap: int = 10) -> bytes:
    """Horizontal bars, one per value, scaled to the largest; the labels are the HTML table beside it
    (text in an image is unreadable to screen readers and cannot be searched)."""
    values = [max(float(v), 0.0) for v in values] or [0.0]
    top = max(values) or 1.0
    height = len(values) * (bar_height + gap) + gap
    rows: list[bytes] = []
    blank = bytes(BACKGROUND) * width
    rows.extend([blank] * gap)
    for value in values:
        filled = max(1, round(width * value / top)) if value > 0 else 0
        row = bytes(BAR) * filled + bytes(TRACK) * (width - filled)
        rows.extend([row] * bar_height)
        rows.extend([blank] * gap)
    return png(width, height, rows)
