"""Figures describing a built benchmark: gallery (Figure 1), DCT spectra (Figure 2), intensity densities (Figure 5C)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..figures import SEVERITY_COLUMNS, dct_spectrum_figure, image_grid, intensity_density_figure, save_figure
from ..files import write_image
from .builder import MANIFEST
from .reader import iter_rows


def read_config_images(folder: str | Path, config: str, split: str = "test", limit: int = 64) -> np.ndarray:
    """The first ``limit`` images of a config's split, decoded, as an ``N×H×W[×3]`` uint8 array."""
    images: list[np.ndarray] = []
    for batch, _, _ in iter_rows(folder, config, split, batch_size=limit):
        images += batch[: limit - len(images)]
        if len(images) == limit:
            break
    return np.stack(images)


def describe_benchmark(
    folder: str | Path, out_dir: str | Path, *, severity: int = 3, limit: int = 64, split: str = "test"
) -> list[Path]:
    """Writes, per dataset of a built benchmark, its gallery, DCT-spectrum and intensity-density figures (PNG)."""
    folder, out_dir = Path(folder), Path(out_dir)
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise ValueError(f"{folder} is not a benchmark built by hf-robustmed (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    written = []
    for dataset, info in manifest["datasets"].items():
        if split not in info["splits"]:
            continue
        clean = read_config_images(folder, f"{dataset}-clean", split, limit)
        rows, chosen = [], {}
        for corruption in info["corruptions"]:
            levels = [s for s in range(1, 6) if f"{dataset}-{corruption}-{s}" in manifest["configs"]]
            cells = {s: read_config_images(folder, f"{dataset}-{corruption}-{s}", split, limit) for s in levels}
            rows.append(
                (
                    corruption,
                    [clean[0]] + [cells[s][0] if s in cells else np.full_like(clean[0], 255) for s in range(1, 6)],
                )
            )
            if cells:
                chosen[corruption] = cells.get(severity, cells[max(cells)])
        title = f"{manifest['name']} · {dataset}"
        written.append(
            write_image(image_grid(rows, SEVERITY_COLUMNS, tile=128, title=title), out_dir / f"{dataset}_gallery.png")
        )
        if chosen:
            written.append(
                save_figure(
                    dct_spectrum_figure(clean, chosen, title=f"{title}: average DCT spectrum (severity {severity})"),
                    out_dir / f"{dataset}_dct_spectrum.png",
                )
            )
            written.append(
                save_figure(
                    intensity_density_figure(clean, chosen, title=f"{title}: pixel intensities (severity {severity})"),
                    out_dir / f"{dataset}_intensity_density.png",
                )
            )
    if not written:
        raise ValueError(f"{folder} has no {split} split to describe")
    return written
