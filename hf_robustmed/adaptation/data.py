"""The joint few-shot training set: clean splits of several benchmark datasets in one global label space.

Images stay PNG-encoded in memory (as stored in the benchmark's shards) and are decoded per sample, so even the
paper's 100 % pool (35 k images) costs little memory. Augmentation draws come from ``(seed, epoch, row)``, so a
run gives the same batches whatever the number of workers or processes, and a resumed run continues exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.manifest import BenchmarkManifest
from ..data.reader import ShardRows, decode_png
from ..files import atomic_path
from .sampling import FewShotManifest, stratified_fraction


@dataclass
class DatasetRows:
    """Some rows of one dataset's clean split, still PNG-encoded."""

    dataset: str
    class_names: list[str]
    images: list[bytes]
    labels: np.ndarray
    indices: np.ndarray

    def take(self, indices: Sequence[int]) -> DatasetRows:
        """The rows whose source ``index`` is in ``indices`` (in stored order)."""
        keep = np.isin(self.indices, np.asarray(indices, dtype=self.indices.dtype))
        return DatasetRows(
            self.dataset,
            self.class_names,
            [image for image, k in zip(self.images, keep, strict=True) if k],
            self.labels[keep],
            self.indices[keep],
        )


def find_dataset(manifests: dict[Path, BenchmarkManifest], dataset: str) -> tuple[Path, list[str]]:
    """The benchmark folder that holds ``dataset`` and its class names, from the folders' build manifests."""
    for folder, manifest in manifests.items():
        info = manifest.datasets.get(dataset)
        if info is not None:
            if info.multilabel:
                raise ValueError(f"{dataset} is multi-label; the joint training set needs single-label datasets")
            return folder, list(info.class_names)
    names = sorted({d for manifest in manifests.values() for d in manifest.datasets})
    raise ValueError(f"dataset {dataset!r} is in none of the benchmarks; they hold: {', '.join(names)}")


def read_clean_rows(folder: Path, dataset: str, class_names: list[str], split: str) -> DatasetRows:
    """All rows of ``{dataset}-clean``'s ``split``, in stored order, images kept PNG-encoded.

    Read by the benchmark reader (:class:`~hf_robustmed.data.reader.ShardRows`), the image bytes kept as stored.
    """
    try:
        shards = ShardRows(folder, f"{dataset}-clean", split)
    except ValueError as error:
        raise ValueError(f"{error} (build the benchmark with the {split!r} split)") from None
    pngs, labels, indices = shards.pngs(0, len(shards))
    images = [png.tobytes() for png in pngs]  # copies: the rows outlive the memory-mapped shards
    return DatasetRows(dataset, class_names, images, labels.astype(np.int64), indices)


def capped_subset(rows: DatasetRows, cap: int, seed: int) -> DatasetRows:
    """A seeded stratified subset of at most about ``cap`` rows (all of them when fewer)."""
    if len(rows.labels) <= cap:
        return rows
    chosen = stratified_fraction(rows.labels, cap / len(rows.labels), seed)
    return rows.take(rows.indices[chosen])


@dataclass
class JointSet:
    """Training rows of several datasets with labels offset into one global label space (SPEC §7.1).

    Attributes:
        datasets: Dataset ids in label-space order.
        class_names: Per dataset, its class names; ``offsets[d]`` is the global label of its class 0.
        train: Per dataset, the few-shot training rows.
        selection: Per dataset, rows for model selection (may be empty).
        manifests: The sampling records, one per dataset.
    """

    datasets: list[str]
    class_names: dict[str, list[str]]
    offsets: dict[str, int]
    train: dict[str, DatasetRows]
    selection: dict[str, DatasetRows]
    manifests: dict[str, FewShotManifest]
    selection_split: str

    @property
    def num_classes(self) -> int:
        return sum(len(names) for names in self.class_names.values())

    def prompts(self, template: str) -> list[str]:
        """One training prompt per global class (``{c}`` class, ``{d}`` dataset)."""
        return [template.format(c=name, d=d) for d in self.datasets for name in self.class_names[d]]

    def training_rows(self) -> tuple[list[bytes], np.ndarray]:
        """All training images and their global labels, datasets in label-space order."""
        images = [image for d in self.datasets for image in self.train[d].images]
        labels = np.concatenate([self.train[d].labels + self.offsets[d] for d in self.datasets])
        return images, labels

    def save_manifest(self, path: str | Path) -> Path:
        """The exact rows of this run (training and selection), so other methods can reuse them."""
        record = {
            "datasets": self.datasets,
            "offsets": self.offsets,
            "selection_split": self.selection_split,
            "samples": [asdict(self.manifests[d]) for d in self.datasets],
            "selection": {d: self.selection[d].indices.tolist() for d in self.datasets},
        }
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
        return Path(path)


def build_joint_set(
    benchmarks: Sequence[Path],
    datasets: Sequence[str],
    *,
    split: str = "validation",
    fraction: float | None = 0.1,
    shots: int | None = None,
    selection: str = "val_remainder",
    selection_max_per_dataset: int = 512,
    seed: int = 42,
) -> JointSet:
    """Samples each dataset's pool (``split`` of its clean config) and assembles the joint set.

    ``selection``: ``val_remainder`` uses the pool rows not drawn for training, ``test`` the clean test split
    (the paper's choice, which leaks test data into model selection), ``last`` none.
    """
    if len(set(datasets)) != len(datasets):
        raise ValueError(f"datasets listed twice: {list(datasets)}")
    class_names, offsets, train, chosen, manifests = {}, {}, {}, {}, {}
    offset = 0
    built = {folder: BenchmarkManifest.read(folder) for folder in benchmarks}
    for dataset in datasets:
        folder, names = find_dataset(built, dataset)
        pool = read_clean_rows(folder, dataset, names, split)
        manifest = FewShotManifest.sample(
            dataset, split, pool.labels, pool.indices, fraction=fraction, k=shots, seed=seed
        )
        class_names[dataset], offsets[dataset], manifests[dataset] = names, offset, manifest
        train[dataset] = pool.take(manifest.train)
        offset += len(names)
        if selection == "val_remainder":
            rest = pool.take(np.setdiff1d(pool.indices, manifest.train))
        elif selection == "test":
            rest = read_clean_rows(folder, dataset, names, "test")
        else:
            rest = pool.take([])
        chosen[dataset] = capped_subset(rest, selection_max_per_dataset, seed)
    split_name = {"val_remainder": split, "test": "test"}.get(selection, "")
    return JointSet(list(datasets), class_names, offsets, train, chosen, manifests, split_name)


def augmentation_suite(dataset: str, suite: str = "auto") -> str:
    """The corruption suite of ``dataset``'s augmentation: with ``auto``, MedMNIST-C's own parameters for a MedMNIST
    dataset and ImageNet-C's otherwise (MediMeta-C's 7 corruptions use ImageNet-C's parameters)."""
    from ..corruptions import MEDMNIST_DATASETS

    if suite != "auto":
        return suite
    return f"medmnist-c/{dataset}" if dataset in MEDMNIST_DATASETS else "imagenet-c"


def _augment_names(spec: str, suite: str) -> list[str]:
    from ..corruptions import list_corruptions, seen_corruptions

    if spec == "seen":
        return seen_corruptions(suite)
    if spec == "all":
        return list_corruptions(suite)
    wanted = [name.strip() for name in spec.split(",") if name.strip()]
    return [name for name in list_corruptions(suite) if name in wanted]


def corruption_augmenters(
    datasets: Sequence[str],
    spec: str | None,
    *,
    suite: str = "auto",
    continuous: bool = True,
    p_clean: float | None = None,
    seed: int = 0,
) -> dict:
    """Per dataset, its :class:`~hf_robustmed.corruptions.RandomCorruption` (``None``: trained on clean images).

    Args:
        datasets: The training datasets.
        spec: ``seen`` (the seen families of the held-out protocol), ``all``, or comma-separated corruption names
            (each dataset uses those its suite has); ``None``: no augmentation.
        suite, continuous, p_clean, seed: As :class:`~hf_robustmed.adaptation.config.TrainConfig`'s ``augment_*``.

    Raises:
        ValueError: If a named corruption is in none of the datasets' suites.
    """
    from ..corruptions import RandomCorruption, list_corruptions

    if spec is None:
        return dict.fromkeys(datasets)
    spec = spec.strip()
    if spec not in ("seen", "all"):
        known = {n for d in datasets for n in list_corruptions(augmentation_suite(d, suite))}
        unknown = [n.strip() for n in spec.split(",") if n.strip() and n.strip() not in known]
        if unknown:
            raise ValueError(
                f"augment names corruption(s) in none of the training suites: {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known))}"
            )
    augmenters = {}
    for d in datasets:
        names = _augment_names(spec, augmentation_suite(d, suite))
        augmenters[d] = (
            RandomCorruption(augmentation_suite(d, suite), names, continuous=continuous, p_clean=p_clean, seed=seed)
            if names
            else None
        )
    return augmenters


def seen_corruption_names(augmenters: dict) -> list[str]:
    """The corruptions any dataset was augmented with, in first-seen order (those the evaluation must hold apart)."""
    return list(dict.fromkeys(n for t in augmenters.values() if t is not None for n in t.corruptions))


def random_resized_crop_box(
    rng: np.random.Generator, height: int, width: int, scale=(0.8, 1.0), ratio=(3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box (top, left, h, w), drawn from ``rng``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height  # fallback: the central crop of the closest ratio
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class AugmentedImages:
    """A map-style dataset of training images: the paper's augmentation, deterministic per (seed, epoch, row).

    ``RandomResizedCrop(size, scale=(0.8, 1)) → RandomHorizontalFlip → Normalize(mean, std)`` (SPEC §7.1),
    preceded, when ``corruptions`` gives a row a :class:`~hf_robustmed.corruptions.RandomCorruption`, by that
    corruption on the decoded image (grey images corrupted as grey, as in the benchmarks), keyed ``(epoch, row)``.
    """

    def __init__(
        self,
        images: list[bytes],
        labels: np.ndarray,
        *,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        seed: int,
        corruptions: Sequence | None = None,
    ):
        self.images, self.labels, self.size, self.seed, self.epoch = images, labels, size, seed, 0
        self.mean = np.asarray(mean, np.float32) * 255
        self.std = np.asarray(std, np.float32) * 255
        if corruptions is not None and len(corruptions) != len(images):
            raise ValueError(f"got {len(corruptions)} corruption transforms for {len(images)} images")
        self.corruptions = corruptions

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, row: int):
        import torch

        image = decode_png(self.images[row])
        if self.corruptions is not None and self.corruptions[row] is not None:
            image = self.corruptions[row](image, key=(self.epoch, row))
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        rng = np.random.default_rng([self.seed, self.epoch, row])
        top, left, h, w = random_resized_crop_box(rng, *image.shape[:2])
        crop = cv2.resize(image[top : top + h, left : left + w], (self.size, self.size), interpolation=cv2.INTER_CUBIC)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        pixels = (crop.astype(np.float32) - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))), int(self.labels[row])


class EpochPermutation:
    """A sampler: a seeded permutation of the rows, a new one per epoch (``set_epoch``)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist())
