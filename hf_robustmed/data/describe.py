"""What the description figures of a built benchmark show (gallery, DCT spectra, intensity densities), read from it.

This module only reads images; the figures themselves are drawn by :mod:`hf_robustmed.figures` (``hf-robustmed
describe`` puts the two together), so that the data layer does not depend on plotting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corruptions.seeding import SEVERITIES
from .manifest import BenchmarkManifest
from .reader import iter_rows


def read_config_images(folder: str | Path, config: str, split: str = "test", limit: int = 64) -> np.ndarray:
    """The first ``limit`` images of a config's split, decoded, as an ``N×H×W[×3]`` uint8 array."""
    images: list[np.ndarray] = []
    for batch, _, _ in iter_rows(folder, config, split, batch_size=limit):
        images += batch[: limit - len(images)]
        if len(images) == limit:
            break
    return np.stack(images)


@dataclass(frozen=True)
class DatasetSample:
    """The first images of one dataset's split in a benchmark: clean, and of each corruption at each severity built.

    Attributes:
        dataset: The dataset id.
        title: ``{benchmark} · {dataset}``, the figures' heading.
        clean: The clean images, ``N×H×W[×3]`` uint8.
        corrupted: Corruption → severity → images (the severities built), corruptions in suite order.
    """

    dataset: str
    title: str
    clean: np.ndarray
    corrupted: dict[str, dict[int, np.ndarray]]

    def gallery_rows(self) -> list[tuple[str, list[np.ndarray]]]:
        """One row per corruption: the first clean image, then its first image at severities 1–5 (a white tile
        where a severity was not built)."""
        blank = np.full_like(self.clean[0], 255)
        return [
            (name, [self.clean[0], *(levels[s][0] if s in levels else blank for s in SEVERITIES)])
            for name, levels in self.corrupted.items()
        ]

    def at_severity(self, severity: int) -> dict[str, np.ndarray]:
        """Per corruption built, its images at ``severity`` (its highest severity built when that one was not)."""
        return {name: levels.get(severity, levels[max(levels)]) for name, levels in self.corrupted.items() if levels}


def sample_benchmark(folder: str | Path, *, limit: int = 64, split: str = "test") -> list[DatasetSample]:
    """The first ``limit`` images of ``split`` of every dataset of a built benchmark that has that split.

    Raises:
        ValueError: If the folder holds no complete benchmark, or none of its datasets has ``split``.
    """
    folder = Path(folder)
    manifest = BenchmarkManifest.read(folder)
    samples = []
    for dataset, info in manifest.datasets.items():
        if split not in info.splits:
            continue
        corrupted = {
            corruption: {
                s: read_config_images(folder, f"{dataset}-{corruption}-{s}", split, limit)
                for s in SEVERITIES
                if f"{dataset}-{corruption}-{s}" in manifest.configs
            }
            for corruption in info.corruptions
        }
        clean = read_config_images(folder, f"{dataset}-clean", split, limit)
        samples.append(DatasetSample(dataset, f"{manifest.name} · {dataset}", clean, corrupted))
    if not samples:
        raise ValueError(f"{folder} has no {split} split to describe")
    return samples
