"""File helpers: reading images with clear errors, and atomic writes (a temporary name, then a rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as a uint8 array (grey ``H×W``, ``H×W×3``, or with alpha ``H×W×4``).

    16-bit greyscale files are scaled to 8 bits (``v >> 8``); palette and CMYK images are converted to RGB(A).

    Raises:
        ValueError: If the file is missing, unreadable or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    try:
        with Image.open(path) as pil:
            pil.load()
            if pil.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                return (np.asarray(pil, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
            if pil.mode not in ("L", "RGB", "RGBA", "LA"):
                pil = pil.convert("RGBA" if "A" in pil.mode or "transparency" in pil.info else "RGB")
            return np.asarray(pil)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``, renamed onto ``path`` only if the block succeeds.

    A reader never sees a half-written file, and a failed or killed write leaves no file at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_image(image: np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Writes an image atomically; the format follows the extension (PNG recommended: lossless)."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.squeeze(image, axis=2) if image.ndim == 3 and image.shape[2] == 1 else image)
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            pil.save(tmp, format=Image.registered_extensions().get(path.suffix.lower()))
        except (KeyError, ValueError, OSError) as error:
            raise ValueError(f"cannot write image {path}: {error}") from None
    return path
