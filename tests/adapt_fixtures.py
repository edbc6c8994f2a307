"""A small learnable benchmark (visually separable classes) and the tiny BiomedCLIP stand-in in a Hub cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hf_robustmed.data import build_benchmark
from hf_robustmed.data.builder import BuildJob
from hf_robustmed.data.source import SourceSplit

TOY = {
    # colour-coded classes, RGB
    "toyderm": ["reddish lesion", "greenish lesion", "bluish lesion"],
    # brightness-coded classes, grey
    "toyxray": ["normal lung", "consolidation"],
}


def toy_image(dataset: str, label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    noise = rng.normal(0, 18, (size, size, 3))
    if dataset == "toyderm":
        image = np.full((size, size, 3), 70.0)
        image[..., label] = 190
    else:
        image = np.full((size, size, 3), 70.0 if label == 0 else 180.0)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return image if dataset == "toyderm" else image[..., 0]


def toy_split(dataset: str, split: str, n: int, seed: int) -> SourceSplit:
    rng = np.random.default_rng([seed, len(split)])
    labels = np.arange(n) % len(TOY[dataset])
    images = np.stack([toy_image(dataset, int(y), rng) for y in labels])
    return SourceSplit(dataset, split, images, labels, TOY[dataset], license="CC0-1.0")


def build_toy_benchmark(out: Path, *, n_val: int = 48, n_test: int = 24) -> Path:
    """Clean validation + test configs and one corruption (pixelate, severities 1 and 3)."""
    jobs = []
    for seed, dataset in enumerate(TOY):
        jobs.append(BuildJob(toy_split(dataset, "validation", n_val, seed), "imagenet-c", ("pixelate",), (1, 3)))
        jobs.append(BuildJob(toy_split(dataset, "test", n_test, seed + 10), "imagenet-c", ("pixelate",), (1, 3)))
    build_benchmark(jobs, out, name="Toy-C", shard_rows=64, progress=False)
    return out
