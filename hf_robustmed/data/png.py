"""A fast, deterministic PNG encoder for 8-bit grey and RGB images.

Benchmarks store every image losslessly as PNG. libpng (through OpenCV or Pillow) spends 3–8 ms on a 224-px RGB
image here, more than corrupting it; this writer applies PNG's "Up" filter with numpy and deflates with libdeflate
(``deflate``, level 1), about 1.4 ms, with files smaller than libpng's at level 1. libdeflate is deterministic:
the same image always gives the same bytes (ISA-L, twice as fast, was not: its level-1 output varied between
processes). Any PNG decoder reads the files.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from .._optional import require

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # grey, RGB, RGBA
_UP = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an ``H×W``, ``H×W×1``, ``H×W×3`` or ``H×W×4`` uint8 image."""
    deflate = require("deflate", "data", "writing benchmarks")
    if image.dtype != np.uint8:
        raise ValueError(f"PNG encoding needs uint8 images, got {image.dtype}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.ndim not in (2, 3) or channels not in _COLOUR_TYPES:
        raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
    height, width = image.shape[:2]
    rows = np.ascontiguousarray(image).reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), np.uint8)
    filtered[:, 0] = _UP  # each row minus the row above (the first: minus zeros), modulo 256
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", bytes(deflate.zlib_compress(filtered.tobytes(), 1))),
            _chunk(b"IEND", b""),
        )
    )
