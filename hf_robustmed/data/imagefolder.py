"""Any Hugging Face image-classification dataset or local image folder as a source."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._optional import require
from ..medical_images import pil_to_uint8
from .source import SourceSplit


class _DatasetImages:
    """Rows of a ``datasets.Dataset`` image column as uint8 arrays (all images must share one size and mode).

    Each image is converted as :func:`~hf_robustmed.medical_images.read_medical_image` converts files.
    """

    def __init__(self, dataset, column: str):
        self.dataset, self.column = dataset, column
        first = self._convert(dataset[0][column]) if len(dataset) else np.zeros((0, 0), np.uint8)
        self.shape = (len(dataset), *first.shape)

    @staticmethod
    def _convert(image) -> np.ndarray:
        """A decoded Pillow image as 8-bit grey or RGB, by the toolkit's one policy (16-bit min–max scaled …)."""
        return pil_to_uint8(image)[0]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        batch = [self._convert(img) for img in self.dataset[rows][self.column]]
        for image in batch:
            if image.shape != self.shape[1:]:
                raise ValueError(
                    f"images differ in size or mode ({image.shape} vs {self.shape[1:]}); resize them first"
                )
        return np.stack(batch) if batch else np.empty((0, *self.shape[1:]), np.uint8)


def load_image_dataset(
    path: str,
    split: str = "test",
    *,
    name: str | None = None,
    dataset_id: str | None = None,
    image_column: str = "image",
    label_column: str = "label",
    **load_kwargs,
) -> SourceSplit:
    """A split of any image-classification dataset loadable by ``datasets.load_dataset``.

    An image folder (``"imagefolder"`` with ``data_dir``, laid out ``{split}/{class}/*``) is read one split at a
    time, its labels numbered over the class folders of all splits: a split that lacks a class keeps the same ids.

    Args:
        path: A Hub repo id, a local dataset folder, or ``"imagefolder"`` with ``data_dir=...``.
        split: Split to read.
        name: Config name, if any.
        dataset_id: Id used in config names (default: the last part of ``path`` or ``data_dir``).
        image_column, label_column: Columns holding the image and its ``ClassLabel``.
        **load_kwargs: Passed to ``datasets.load_dataset`` (``data_dir``, ``cache_dir`` …).
    """
    datasets = require("datasets", "data", "loading Hugging Face datasets")
    ident = dataset_id or str(load_kwargs.get("data_dir") or path).rstrip("/").split("/")[-1]
    if path == "imagefolder" and "data_dir" in load_kwargs and "data_files" not in load_kwargs:
        load_kwargs = _one_split_of_folder(datasets, split, **load_kwargs)
    data = datasets.load_dataset(path, name, split=split, **load_kwargs)
    feature = data.features.get(label_column)
    if not isinstance(feature, datasets.ClassLabel):
        raise ValueError(f"column {label_column!r} must be a ClassLabel, got {feature!r}")
    if image_column not in data.column_names:
        raise ValueError(f"no column {image_column!r}; columns: {data.column_names}")
    return SourceSplit(
        dataset=ident.lower().replace("-", "_"),
        split=split,
        images=_DatasetImages(data, image_column),
        labels=np.asarray(data[label_column]),
        class_names=list(feature.names),
        description=f"{path} ({split})",
    )


def _one_split_of_folder(datasets, split: str, *, data_dir: str, **load_kwargs) -> dict:
    """``load_dataset`` arguments that read only ``split`` of an image folder, labelled over all its splits.

    ``load_dataset("imagefolder", data_dir=..., split=...)`` prepares every split (and says "Generating validation
    split" when the test split was asked); given the split's files only, it would number the labels over that
    split's classes alone. Folders with a metadata file or zip archives are left to ``datasets``.

    Raises:
        ValueError: If the folder has no such split.
    """
    builder = datasets.load_dataset_builder("imagefolder", data_dir=data_dir, **load_kwargs)
    files = {str(name): [str(f) for f in found] for name, found in builder.config.data_files.items()}
    every = [Path(f) for found in files.values() for f in found]
    if any(f.name in builder.METADATA_FILENAMES or f.suffix.lower() == ".zip" for f in every):
        return {"data_dir": data_dir, **load_kwargs}
    base = split.split("[")[0]  # "test[:100]" reads part of the test split
    if base not in files:
        raise ValueError(f"image folder {data_dir} has no split {base!r}; splits: {', '.join(sorted(files))}")
    classes = sorted({f.parent.name for f in every if f.suffix.lower() in builder.EXTENSIONS})
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=classes)})
    return {**load_kwargs, "data_files": {base: files[base]}, "features": features, "drop_labels": False}
