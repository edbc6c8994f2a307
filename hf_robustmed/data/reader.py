"""Reading a built benchmark's shards back: rows of one config's split, images decoded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


def decode_png(data: bytes) -> np.ndarray:
    """A stored image as ``H×W`` (grey) or ``H×W×3`` (RGB) uint8."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("cannot decode a stored image (corrupt shard?)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def iter_rows(folder: str | Path, config: str, split: str, batch_size: int) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
    """Batches of (decoded images, labels, source indices) of a config's split, in stored order, streamed."""
    import pyarrow.parquet as pq

    files = sorted((Path(folder) / config).glob(f"{split}-*.parquet"))
    if not files:
        raise ValueError(f"no {split} shards for config {config!r} in {folder}")
    for file in files:
        for batch in pq.ParquetFile(file).iter_batches(batch_size=batch_size, columns=["image", "label", "index"]):
            images = [decode_png(cell["bytes"]) for cell in batch.column("image").to_pylist()]
            yield images, np.asarray(batch.column("label").to_pylist()), np.asarray(batch.column("index").to_pylist())
