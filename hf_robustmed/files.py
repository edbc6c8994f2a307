"""File helpers: reading images (the toolkit's one reader), atomic writes that follow the umask, writing images and
JSON records."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from .medical_images import ImageReadError, read_medical_image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as 8-bit grey ``H×W`` or RGB ``H×W×3``: any common format, 16-bit or DICOM.

    :func:`~hf_robustmed.medical_images.read_medical_image` does the reading (16-bit and float images min–max
    scaled, DICOM windowed, alpha composited over black: the policy of every entry point); this names the file in
    the error.

    Raises:
        ValueError: If the file is missing, unreadable or not an image; the message names the file and the reason.
    """
    try:
        return read_medical_image(path).pixels
    except ImageReadError as error:
        raise ValueError(f"cannot read image {path}: {error}") from None


_NEW_FILE_MODE = 0o666  # what open() asks for; the kernel removes the umask's bits (0o644 under umask 022)


def _create_temporary(path: Path) -> Path:
    """Creates an empty, uniquely named file beside ``path`` with the permissions a plain ``open()`` would give.

    ``tempfile.mkstemp`` creates files readable by their owner only (0600) whatever the umask; a shard, card or
    adapter renamed from one would lock out colleagues, a shared data folder or a Space running as another user.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside ``path``, renamed onto ``path`` only if the block succeeds.

    A reader never sees a half-written file, and a failed or killed write leaves no file at ``path``. The file
    gets the permissions of any new file (``0o666`` less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_image(image: np.ndarray | Image.Image, path: str | os.PathLike) -> Path:
    """Writes an image atomically; the format follows the extension (PNG recommended: lossless)."""
    pil = (
        image
        if isinstance(image, Image.Image)
        else Image.fromarray(np.squeeze(image, axis=2) if image.ndim == 3 and image.shape[2] == 1 else image)
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            pil.save(tmp, format=Image.registered_extensions().get(path.suffix.lower()))
        except (KeyError, ValueError, OSError) as error:
            raise ValueError(f"cannot write image {path}: {error}") from None
    return path


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Writes ``data`` as sorted, indented JSON through :func:`atomic_path`, creating the parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
