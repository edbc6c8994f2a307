"""Tiny files in every real source format, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import textured_image
from PIL import Image


def images(n: int, size: int, rgb: bool, seed: int) -> np.ndarray:
    return np.stack([textured_image(size, rgb, seed=seed + i) for i in range(n)])


def write_medmnist(
    root: Path,
    flag: str,
    *,
    rgb: bool,
    classes: int,
    size: int = 28,
    counts=(6, 4, 5),
    multilabel: bool = False,
    seed: int = 0,
) -> Path:
    """``{flag}[_{size}].npz`` with MedMNIST's keys; labels N×1 (or N×classes multi-hot)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        arrays[f"{split}_images"] = images(n, size, rgb, seed + 100 * len(arrays))
        arrays[f"{split}_labels"] = (
            rng.integers(0, 2, (n, classes)) if multilabel else rng.integers(0, classes, (n, 1))
        ).astype(np.uint8)
    path = root / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")
    np.savez_compressed(path, **arrays)
    return path


def write_medimeta(
    root: Path, dataset: str, task: str, labels: dict[int, str], *, rgb: bool, n: int = 9, size: int = 32, seed: int = 0
) -> Path:
    """A MedIMeta dataset folder: info.yaml, images.hdf5, task_labels/<task>.npy, splits/*.txt."""
    import h5py
    import yaml

    folder = root / dataset
    (folder / "task_labels").mkdir(parents=True)
    (folder / "splits").mkdir()
    rng = np.random.default_rng(seed)
    with h5py.File(folder / "images.hdf5", "w") as handle:
        handle["images"] = images(n, size, rgb, seed)
    np.save(folder / "task_labels" / f"{task}.npy", rng.integers(0, len(labels), n))
    np.save(folder / "task_labels" / "other task.npy", rng.integers(0, 2, n))
    order = rng.permutation(n)
    splits = {"train": order[: n // 3], "val": order[n // 3 : 2 * n // 3], "test": order[2 * n // 3 :]}
    for split, rows in splits.items():  # unsorted on purpose: the loader sorts
        (folder / "splits" / f"{split}.txt").write_text("\n".join(f"images/{i:06d}.tiff" for i in rows[::-1]) + "\n")
    info = {
        "id": dataset,
        "name": dataset.upper(),
        "domain": "test",
        "license": "CC BY-SA 4.0",
        "input_size": [3 if rgb else 1, size, size],
        "total_num_samples": n,
        "tasks": [
            {"task_name": task, "task_target": "MULTICLASS_CLASSIFICATION", "labels": labels},
            {"task_name": "other task", "task_target": "BINARY_CLASSIFICATION", "labels": {0: "no", 1: "yes"}},
        ],
    }
    (folder / "info.yaml").write_text(yaml.safe_dump(info))
    return folder


def write_medmnist_c_release(
    root: Path, clean_npz: Path, flag: str, corruptions=("pixelate", "gaussian_noise")
) -> Path:
    """The published MedMNIST-C layout: ``{flag}/{corruption}.npz``, 5·N test images severity-major."""
    with np.load(clean_npz) as clean:
        test_images, test_labels = clean["test_images"], clean["test_labels"]
    folder = root / flag
    folder.mkdir(parents=True)
    for c, name in enumerate(corruptions):
        stacked = np.concatenate(
            [np.clip(test_images.astype(int) + 10 * (s + 1) + c, 0, 255).astype(np.uint8) for s in range(5)]
        )
        np.savez_compressed(folder / f"{name}.npz", test_images=stacked, test_labels=np.concatenate([test_labels] * 5))
    return folder


def write_medimeta_c_release(
    root: Path,
    clean_images: np.ndarray,
    labels: np.ndarray,
    dataset: str,
    split: str,
    corruptions=("brightness", "zoom_blur"),
) -> Path:
    """The authors' MediMeta-C layout: ``{dataset}/{split}/clean.npz`` and ``{corruption}_severity_{k}.npz``."""
    folder = root / dataset / split
    folder.mkdir(parents=True)
    rgb = clean_images if clean_images.ndim == 4 else np.repeat(clean_images[..., None], 3, axis=3)
    np.savez(folder / "clean.npz", images=rgb, labels=labels.reshape(-1, 1))
    for c, name in enumerate(corruptions):
        for severity in range(1, 6):
            np.savez(folder / f"{name}_severity_{severity}.npz", images=255 - rgb // (severity + c), labels=labels)
    return folder


def write_image_folder(root: Path, classes=("benign", "malignant"), per_class: int = 3, size: int = 24) -> Path:
    """An ``imagefolder`` dataset: ``root/test/<class>/<n>.png``."""
    for c, name in enumerate(classes):
        folder = root / "test" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(textured_image(size, True, seed=10 * c + i)).save(folder / f"{i}.png")
    return root
