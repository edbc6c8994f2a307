"""Reading images back: a built benchmark's shards, a clean source split, or either corrupted on the fly.

Every reader is a *row source*: ``len(rows)`` and ``rows.read(start, stop)`` give rows in stored order as a
:class:`RowBatch`. Row sources are small picklable descriptions (paths, names, seeds), so that data-loader workers
can each read and decode their own rows (:mod:`hf_robustmed.data.loader`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import pyarrow as pa

SHARD_COLUMNS = ["image", "label", "index"]


def decode_png(data: bytes | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A stored image as ``H×W`` (grey) or ``H×W×3`` (RGB) uint8, written into ``out`` if given (same shape)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("cannot decode a stored image (corrupt shard?)")
    if out is None:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image
    if out.shape != image.shape:
        raise ValueError(f"stored images differ in shape: {image.shape} after {out.shape}")
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=out)
    out[...] = image
    return out


def decode_images(blobs) -> np.ndarray | list[np.ndarray]:
    """Decodes an Arrow array of image structs (``bytes``, ``path``) without copying the bytes: one ``N×H×W[×3]``
    array when the images share a shape (each decoded straight into it), else a list."""
    binary = blobs.field("bytes")
    wide = pa.types.is_large_binary(binary.type)
    offsets = np.frombuffer(binary.buffers()[1], np.int64 if wide else np.int32)[
        binary.offset : binary.offset + len(binary) + 1
    ]
    data = np.frombuffer(binary.buffers()[2], np.uint8)
    views = [data[offsets[i] : offsets[i + 1]] for i in range(len(binary))]
    if not views:
        return []
    first = decode_png(views[0])
    batch = np.empty((len(views), *first.shape), np.uint8)
    batch[0] = first
    try:
        for i in range(1, len(views)):
            decode_png(views[i], out=batch[i])
    except ValueError:  # images of several shapes (an image-folder source, say)
        return [decode_png(view) for view in views]
    return batch


@dataclass
class RowBatch:
    """Rows of a source, in stored order: decoded uint8 images, labels and source indices."""

    images: list[np.ndarray] | np.ndarray  # an ``N×H×W[×3]`` array when the images share a shape
    labels: np.ndarray
    indices: np.ndarray


class RowSource(Protocol):
    """Anything the evaluation reads images from."""

    def __len__(self) -> int: ...

    def read(self, start: int, stop: int) -> RowBatch: ...


@dataclass
class ShardRows:
    """A config's split of a built benchmark (``{folder}/{config}/{split}-*.parquet``), read by row ranges.

    A reader keeps the last shard it opened (memory-mapped), so consecutive ranges cost one read per shard.

    Args:
        folder: Benchmark folder.
        config: Config name (``bloodmnist-clean``, ``oct-zoom_blur-3``).
        split: Split name.
    """

    folder: Path
    config: str
    split: str
    files: list[Path] = field(init=False)
    offsets: np.ndarray = field(init=False)
    _open: tuple[int, object] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        import pyarrow.parquet as pq

        self.folder = Path(self.folder)
        self.files = sorted((self.folder / self.config).glob(f"{self.split}-*.parquet"))
        if not self.files:
            raise ValueError(f"no {self.split} shards for config {self.config!r} in {self.folder}")
        counts = [pq.ParquetFile(file).metadata.num_rows for file in self.files]
        self.offsets = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": None}  # each worker opens its own shards

    def _table(self, number: int):
        import pyarrow.parquet as pq

        if self._open is None or self._open[0] != number:
            self._open = (number, pq.read_table(self.files[number], columns=SHARD_COLUMNS, memory_map=True))
        return self._open[1]

    def read(self, start: int, stop: int) -> RowBatch:
        """Rows ``start:stop`` (stored order), images decoded."""
        images, labels, indices = [], [], []
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        for number in range(first, len(self.files)):
            lo, hi = max(start, self.offsets[number]), min(stop, self.offsets[number + 1])
            if lo >= hi:
                break
            rows = self._table(number).slice(lo - self.offsets[number], hi - lo)
            decoded = decode_images(rows.column("image").combine_chunks())
            images = decoded if number == first else [*images, *decoded]
            labels += rows.column("label").to_pylist()
            indices += rows.column("index").to_pylist()
        return RowBatch(images, np.asarray(labels), np.asarray(indices, dtype=np.int64))


@dataclass
class SourceRows:
    """The rows of a clean :class:`~hf_robustmed.data.source.SourceSplit` (MedMNIST npz, MedIMeta, image folder)."""

    source: object  # SourceSplit

    def __len__(self) -> int:
        return len(self.source)

    def read(self, start: int, stop: int) -> RowBatch:
        images = np.asarray(self.source.images[start:stop])
        labels = np.asarray(self.source.label_rows(start, stop), dtype=object if self.source.multilabel else np.int64)
        return RowBatch(images, labels, np.asarray(self.source.indices[start:stop], dtype=np.int64))


@dataclass
class CorruptedRows:
    """Clean rows corrupted on the fly exactly as the builder corrupts them, so images are byte-identical.

    The draws depend on ``(seed, corruption, severity, (dataset, split, index))`` — the builder's per-sample
    keys — so neither the reading order nor the worker count changes a pixel.

    Args:
        clean: The clean rows (a benchmark's ``-clean`` config or a source split).
        dataset, split: The sample keys' dataset and split.
        corruption, severity, suite, seed: As in :func:`hf_robustmed.corruptions.corrupt`.
        grey_source: Whether the source images were grey. A benchmark built with ``grey="rgb"`` stores grey
            sources replicated to RGB but corrupts them grey (then replicates): channel 0 is the grey image.
        store_rgb: Replicate grey results to RGB (the builder's ``grey="rgb"``).
    """

    clean: RowSource
    dataset: str
    split: str
    corruption: str
    severity: int
    suite: str | None
    seed: int
    grey_source: bool = False
    store_rgb: bool = False

    def __len__(self) -> int:
        return len(self.clean)

    def read(self, start: int, stop: int) -> RowBatch:
        from ..corruptions import corrupt

        batch = self.clean.read(start, stop)
        images = []
        for image, index in zip(batch.images, batch.indices, strict=True):
            if self.grey_source and image.ndim == 3:
                image = np.ascontiguousarray(image[..., 0])
            out = corrupt(
                image,
                self.corruption,
                self.severity,
                suite=self.suite,
                seed=self.seed,
                key=(self.dataset, self.split, int(index)),
            )
            images.append(np.repeat(out[..., None], 3, 2) if self.store_rgb and out.ndim == 2 else out)
        return RowBatch(images, batch.labels, batch.indices)


def iter_rows(
    folder: str | Path, config: str, split: str, batch_size: int
) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
    """Batches of (decoded images, labels, source indices) of a config's split, in stored order, streamed."""
    rows = ShardRows(Path(folder), config, split)
    for start in range(0, len(rows), batch_size):
        batch = rows.read(start, min(len(rows), start + batch_size))
        yield list(batch.images), batch.labels, batch.indices
