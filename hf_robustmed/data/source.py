"""The common shape of a source split: lazily readable images, labels and their metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class ImageRows(Protocol):
    """Row-addressable images (a numpy array, an ``h5py`` dataset, an :class:`~.arrays.NpzArray`, …)."""

    shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice) -> np.ndarray: ...


@dataclass
class SourceSplit:
    """One split of a source dataset, read lazily in row ranges.

    Attributes:
        dataset: Dataset id (``bloodmnist``, ``oct`` …).
        split: Hugging Face split name (``test``, ``validation``, ``train``).
        images: ``N×H×W`` or ``N×H×W×3`` uint8 rows.
        labels: ``(N,)`` class indices, or ``(N, L)`` 0/1 for multi-label datasets.
        class_names: Names in label-index order, from the source's own metadata.
        indices: Row of each image in the source split's own order (MedIMeta: sorted sample indices).
        multilabel: Whether labels are multi-hot.
        license, citation, homepage, description: For the dataset card.
        precomputed: Already-corrupted images of this split, ``(corruption, severity) → rows`` aligned with
            ``images`` (importers of published releases); the builder stores them instead of corrupting.
    """

    dataset: str
    split: str
    images: ImageRows
    labels: np.ndarray
    class_names: list[str]
    indices: np.ndarray | None = None
    multilabel: bool = False
    license: str = "unknown"
    citation: str = ""
    homepage: str = ""
    description: str = ""
    precomputed: dict[tuple[str, int], ImageRows] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if len(self.labels) != n:
            raise ValueError(
                f"{self.dataset}/{self.split}: {len(self.labels)} labels for {n} images (the counts must match)"
            )
        if self.indices is None:
            self.indices = np.arange(n, dtype=np.int64)
        elif len(self.indices) != n:
            raise ValueError(f"{self.dataset}/{self.split}: {len(self.indices)} indices for {n} images")
        labels = np.asarray(self.labels)
        width = labels.shape[1] if labels.ndim == 2 else None
        if self.multilabel:
            if width != len(self.class_names):
                raise ValueError(
                    f"{self.dataset}/{self.split}: multi-label rows have {width} columns for "
                    f"{len(self.class_names)} class names"
                )
        elif labels.size:
            flat = labels.reshape(n, -1)
            if flat.shape[1] != 1:
                raise ValueError(f"{self.dataset}/{self.split}: expected one label per image, got shape {labels.shape}")
            if flat.min() < 0 or flat.max() >= len(self.class_names):
                raise ValueError(
                    f"{self.dataset}/{self.split}: labels span {flat.min()}..{flat.max()} but there are "
                    f"{len(self.class_names)} class names"
                )
        for key, rows in self.precomputed.items():
            if len(rows) != n:
                raise ValueError(f"{self.dataset}/{self.split}: {key} has {len(rows)} images for {n} clean ones")
            if tuple(rows.shape[1:3]) != tuple(self.images.shape[1:3]):
                raise ValueError(
                    f"{self.dataset}/{self.split}: {key} images are {rows.shape[1]}×{rows.shape[2]}, the clean ones "
                    f"{self.images.shape[1]}×{self.images.shape[2]}"
                )
        shape = tuple(self.images.shape)
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
            raise ValueError(f"{self.dataset}/{self.split}: images must be N×H×W or N×H×W×3, got {shape}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def rgb(self) -> bool:
        return len(self.images.shape) == 4 and self.images.shape[3] == 3

    def label_rows(self, start: int, stop: int) -> list:
        """Labels of rows ``start:stop`` as Python values (ints, or lists of active class indices)."""
        rows = np.asarray(self.labels[start:stop])
        if self.multilabel:
            return [np.flatnonzero(row).tolist() for row in rows]
        return rows.reshape(len(rows)).astype(int).tolist()
