"""Reading images back: a built benchmark's shards, a clean source split, or either corrupted on the fly.

Every reader is a *row source*: ``len(rows)`` and ``rows.read(start, stop)`` give rows in stored order as a
:class:`RowBatch`. Row sources are small picklable descriptions (paths, names, seeds), so that data-loader workers
can each read and decode their own rows (:mod:`hf_robustmed.data.loader`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import pyarrow as pa

SHARD_COLUMNS = ["image", "label", "index"]


def decode_png(data: bytes | np.ndarray, out: np.ndarray | None = None, *, channels_first: bool = False) -> np.ndarray:
    """A stored image as ``H×W`` (grey) or ``H×W×3`` (RGB) uint8, written into ``out`` if given (same shape).

    ``channels_first``: RGB as ``3×H×W`` instead, made from OpenCV's BGR in the same pass (grey stays ``H×W``).
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("cannot decode a stored image (corrupt shard?)")
    if channels_first and image.ndim == 3:
        return _planes_rgb(image, out)
    if out is None:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image
    if out.shape != image.shape:
        raise ValueError(f"stored images differ in shape: {image.shape} after {out.shape}")
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=out)
    out[...] = image
    return out


def _planes_rgb(image: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """A BGR ``H×W×3`` image as RGB planes ``3×H×W`` (into ``out`` if given), by one ``cv2.split``."""
    if image.shape[2] != 3:
        raise ValueError(f"stored images must be grey or RGB, got {image.shape[2]} channels")
    shape = (3, *image.shape[:2])
    if out is None:
        out = np.empty(shape, np.uint8)
    elif out.shape != shape:
        raise ValueError(f"stored images differ in shape: {shape} after {out.shape}")
    _write_planes(image, out, bgr=True)
    return out


def _write_planes(image: np.ndarray, target: np.ndarray, *, bgr: bool = False) -> None:
    """An ``H×W`` or ``H×W×3`` image (RGB, or BGR if ``bgr``) into ``target``: ``H×W``, or RGB planes ``3×H×W``
    (a grey image replicated)."""
    if image.ndim == 2:
        target[...] = image
        return
    planes = [target[2], target[1], target[0]] if bgr else [target[0], target[1], target[2]]
    for written, plane in zip(cv2.split(image, planes), planes, strict=True):
        if written.ctypes.data != plane.ctypes.data:  # OpenCV wrote elsewhere (not seen; kept exact regardless)
            plane[...] = written


def decode_images(blobs, *, channels_first: bool = False) -> np.ndarray | list[np.ndarray]:
    """Decodes an Arrow array of image structs (``bytes``, ``path``) without copying the bytes: one ``N×H×W[×3]``
    array when the images share a shape (each decoded straight into it), else a list.

    ``channels_first``: RGB images as ``N×3×H×W`` (a list of ``3×H×W``), as the evaluation's batches are laid out.
    """
    return _decode_all(_png_views(blobs), channels_first)


def _png_views(blobs) -> list[np.ndarray]:
    """The PNG bytes of an Arrow array of image structs, as uint8 views of its buffer."""
    binary = blobs.field("bytes")
    wide = pa.types.is_large_binary(binary.type)
    offsets = np.frombuffer(binary.buffers()[1], np.int64 if wide else np.int32)[
        binary.offset : binary.offset + len(binary) + 1
    ]
    data = np.frombuffer(binary.buffers()[2], np.uint8)
    return [data[offsets[i] : offsets[i + 1]] for i in range(len(binary))]


def _decode_all(views: list[np.ndarray], channels_first: bool) -> np.ndarray | list[np.ndarray]:
    if not views:
        return []
    first = decode_png(views[0], channels_first=channels_first)
    batch = np.empty((len(views), *first.shape), np.uint8)
    batch[0] = first
    try:
        for i in range(1, len(views)):
            decode_png(views[i], out=batch[i], channels_first=channels_first)
    except ValueError:  # images of several shapes (an image-folder source, say)
        return [decode_png(view, channels_first=channels_first) for view in views]
    return batch


@dataclass
class RowBatch:
    """Rows of a source, in stored order: decoded uint8 images, labels and source indices."""

    images: list[np.ndarray] | np.ndarray  # an ``N×H×W[×3]`` array when the images share a shape
    labels: np.ndarray
    indices: np.ndarray
    channels_first: bool = False  # RGB images are ``3×H×W`` (``N×3×H×W``), not ``H×W×3``


class RowSource(Protocol):
    """Anything the evaluation reads images from."""

    def __len__(self) -> int: ...

    def read(self, start: int, stop: int, *, channels_first: bool = False) -> RowBatch:
        """Rows ``start:stop``; ``channels_first`` is a preference (the batch says which layout it has)."""
        ...


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
            # ParquetFile, not read_table: that imports pyarrow.dataset on first use (~0.5 s in each worker)
            table = pq.ParquetFile(self.files[number], memory_map=True).read(columns=SHARD_COLUMNS, use_threads=False)
            self._open = (number, table)
        return self._open[1]

    def read(self, start: int, stop: int, *, channels_first: bool = False) -> RowBatch:
        """Rows ``start:stop`` (stored order), images decoded (RGB as ``3×H×W`` if ``channels_first``)."""
        views, labels, indices = self.pngs(start, stop)
        return RowBatch(_decode_all(views, channels_first), labels, indices, channels_first)

    def pngs(self, start: int, stop: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Rows ``start:stop`` undecoded: the stored PNG bytes (views of the memory-mapped shards), labels and
        indices."""
        views, labels, indices = [], [], []
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        for number in range(first, len(self.files)):
            lo, hi = max(start, self.offsets[number]), min(stop, self.offsets[number + 1])
            if lo >= hi:
                break
            rows = self._table(number).slice(lo - self.offsets[number], hi - lo)
            views += _png_views(rows.column("image").combine_chunks())
            labels += rows.column("label").to_pylist()
            indices += rows.column("index").to_pylist()
        return views, np.asarray(labels), np.asarray(indices, dtype=np.int64)


@dataclass
class SourceRows:
    """The rows of a clean :class:`~hf_robustmed.data.source.SourceSplit` (MedMNIST npz, MedIMeta, image folder)."""

    source: object  # SourceSplit

    def __len__(self) -> int:
        return len(self.source)

    def read(self, start: int, stop: int, *, channels_first: bool = False) -> RowBatch:
        """Rows ``start:stop`` as stored in the source (``H×W×3`` RGB whatever ``channels_first``)."""
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

    def read(self, start: int, stop: int, *, channels_first: bool = False) -> RowBatch:
        """Rows ``start:stop`` corrupted; with ``channels_first``, RGB results go straight into the planes of one
        ``N×3×H×W`` array while the images share a shape (no stacking and transposing after)."""
        return self.corrupt_rows(*_clean_rows(self.clean, start, stop), channels_first=channels_first)

    def shares_clean(self, other: CorruptedRows) -> bool:
        """Whether ``other`` corrupts the same clean rows (the same source object) under the same sample keys."""
        fields = ("dataset", "split", "suite", "seed", "grey_source", "store_rgb")
        return other.clean is self.clean and all(getattr(other, f) == getattr(self, f) for f in fields)

    def corrupt_rows(
        self, clean: Iterable[np.ndarray], labels: np.ndarray, indices: np.ndarray, *, channels_first: bool = False
    ) -> RowBatch:
        """Decoded clean rows (images, labels, source indices) corrupted, laid out as :meth:`read` lays them."""
        from ..corruptions import corrupt

        images: list[np.ndarray] = []
        stacked: np.ndarray | None = None  # channels_first: the batch array while every image fits it
        for i, (image, index) in enumerate(zip(clean, indices, strict=True)):
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
            rgb = out.ndim == 3 or self.store_rgb
            if not channels_first:
                images.append(np.repeat(out[..., None], 3, 2) if rgb and out.ndim == 2 else out)
                continue
            shape = (3, *out.shape[:2]) if rgb else out.shape
            if i == 0:
                stacked = np.empty((len(indices), *shape), np.uint8)
            elif stacked is not None and stacked.shape[1:] != shape:  # images of several shapes: a list
                images, stacked = list(stacked[:i]), None
            target = stacked[i] if stacked is not None else np.empty(shape, np.uint8)
            _write_planes(out, target)
            if stacked is None:
                images.append(target)
        return RowBatch(images if stacked is None else stacked, labels, indices, channels_first)


def _clean_rows(clean: RowSource, start: int, stop: int) -> tuple[Iterable[np.ndarray], np.ndarray, np.ndarray]:
    """Rows ``start:stop`` of a clean source: its images (stored PNGs decoded lazily, each just before it is
    corrupted, so it is still in cache), labels and source indices."""
    if isinstance(clean, ShardRows):
        views, labels, indices = clean.pngs(start, stop)
        return (decode_png(view) for view in views), labels, indices
    batch = clean.read(start, stop)
    return batch.images, batch.labels, batch.indices


@dataclass
class CorruptedGroup:
    """Several :class:`CorruptedRows` of the same clean rows read together: each clean image is decoded once and
    corrupted by every member, each member's images byte-identical to its own :meth:`CorruptedRows.read`.

    Args:
        members: Corrupted rows that all share the first one's clean rows (:meth:`CorruptedRows.shares_clean`).
    """

    members: list[CorruptedRows]

    def __post_init__(self) -> None:
        if not self.members or not all(self.members[0].shares_clean(m) for m in self.members):
            raise ValueError("a group's members must corrupt the same clean rows under the same sample keys")

    def __len__(self) -> int:
        return len(self.members[0])

    def read_members(self, start: int, stop: int, *, channels_first: bool = False) -> list[RowBatch]:
        """Rows ``start:stop`` of every member, in member order."""
        clean, labels, indices = _clean_rows(self.members[0].clean, start, stop)
        clean = list(clean)  # decoded once, for every member
        return [m.corrupt_rows(clean, labels, indices, channels_first=channels_first) for m in self.members]

    def read(self, start: int, stop: int, *, channels_first: bool = False) -> RowBatch:
        """Rows ``start:stop`` of every member in one batch, member-major: ``len(members) × (stop − start)``
        images (one array when they share a shape, else a list), and the rows' labels and indices once."""
        batches = self.read_members(start, stop, channels_first=channels_first)
        arrays = [b.images for b in batches if isinstance(b.images, np.ndarray)]
        if len(arrays) == len(batches) and len({a.shape[1:] for a in arrays}) == 1:
            images: np.ndarray | list[np.ndarray] = np.concatenate(arrays)
        else:
            images = [image for b in batches for image in b.images]
        return RowBatch(images, batches[0].labels, batches[0].indices, channels_first)


def iter_rows(
    folder: str | Path, config: str, split: str, batch_size: int
) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
    """Batches of (decoded images, labels, source indices) of a config's split, in stored order, streamed."""
    rows = ShardRows(Path(folder), config, split)
    for start in range(0, len(rows), batch_size):
        batch = rows.read(start, min(len(rows), start + batch_size))
        yield list(batch.images), batch.labels, batch.indices
