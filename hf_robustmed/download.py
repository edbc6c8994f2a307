"""Generic downloads with checksum verification, written atomically (a partial download never looks complete).

Used by the data importers (MedMNIST, MedIMeta) and the model families that fetch released weights (MedCLIP,
UniMed-CLIP); it depends on nothing of theirs.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from .files import atomic_path


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, path: str | Path, md5: str | None = None) -> Path:
    """Downloads ``url`` to ``path`` unless a file with the right checksum is already there.

    Raises:
        ValueError: If the download fails or its MD5 differs from ``md5`` (the bad file is not kept).
    """
    path = Path(path)
    if path.exists() and (md5 is None or md5sum(path) == md5):
        return path
    if md5 is None:
        warnings.warn(f"no checksum is known for {url}; the download cannot be verified", stacklevel=2)
    with atomic_path(path) as tmp:
        try:
            with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=path.name) as bar:
                    while block := response.read(1 << 20):
                        out.write(block)
                        bar.update(len(block))
        except OSError as error:
            raise ValueError(f"download of {url} failed: {error}") from None
        if md5 is not None and (actual := md5sum(tmp)) != md5:
            raise ValueError(f"checksum mismatch for {url}: expected MD5 {md5}, got {actual}")
    return path


def copy_verified(source: str | Path, path: str | Path, md5: str | None) -> Path:
    """Copies a local file into place after checking its MD5 (for files fetched by other means)."""
    if md5 is not None and (actual := md5sum(source)) != md5:
        raise ValueError(f"checksum mismatch for {source}: expected MD5 {md5}, got {actual}")
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return Path(path)
