"""Small numeric helpers shared by the corruption operations."""

from __future__ import annotations

import numpy as np
from PIL import Image


def quantize(y: np.ndarray, top: float = 255.0) -> np.ndarray:
    """``Q(y) = uint8(floor(clip(y, 0, top) * 255 / top))``: the references' truncating conversion.

    Args:
        y: Float image in ``[0, top]`` units.
        top: 255 when ``y`` is in grey levels, 1 when it is in ``[0, 1]``.
    """
    if top != 255.0:
        y = y * (255.0 / top)
    out = np.clip(y, 0.0, 255.0, out=y if y.flags.writeable else None)
    return out.astype(np.uint8)


def to_float(image: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """The image in grey levels as floats (no division by 255: ops work in the 0..255 domain)."""
    return image.astype(dtype)


def pil_luma(image: np.ndarray) -> np.ndarray:
    """Pillow's ``convert('L')`` of an ``H×W×3`` (or ``H×W×1``) uint8 image, bit-exact, as ``H×W``.

    ``L = (19595·R + 38470·G + 7471·B + 32768) >> 16``.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    return np.asarray(Image.fromarray(image).convert("L"))
