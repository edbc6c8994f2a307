"""Agreement of our MedMNIST-C corruptions with the reference ``medmnistc`` 0.1.0, as a table.

Run in the reference environment (``make ref-env``):  ``.venv-ref/bin/python bench/parity.py``

Deterministic corruptions: share of pixels identical and within ±1 grey level, worst over severities, on 224-px
test images (RGB for RGB datasets, grey otherwise), through the reference generator's own pipeline. Motion blur:
the same, with the reference's angle. Random corruptions: mean, standard deviation and share of changed pixels
of (corrupted − clean), ours vs the reference's, over many draws.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import textured_image  # noqa: E402
from medmnistc.corruptions.filter import MotionBlur  # noqa: E402
from medmnistc.corruptions.registry import CORRUPTIONS_DS, DATASET_RGB  # noqa: E402

from hf_robustmed.corruptions import blur, corrupt  # noqa: E402

RANDOM = {
    "gaussian_noise",
    "speckle_noise",
    "impulse_noise",
    "shot_noise",
    "stain_deposit",
    "bubble",
    "characters",
    "motion_blur",
}


def reference(dataset: str, name: str, image: np.ndarray, severity: int) -> np.ndarray:
    out = CORRUPTIONS_DS[dataset][name].apply(Image.fromarray(image).convert("RGB"), severity - 1)
    return np.asarray(Image.fromarray(out).convert("L")) if not DATASET_RGB[dataset] else np.asarray(out)


def deterministic_rows() -> list[str]:
    rows = []
    for dataset, table in CORRUPTIONS_DS.items():
        image = textured_image(224, DATASET_RGB[dataset], seed=3)
        for name in table:
            if name in RANDOM:
                continue
            exact, within = 1.0, 1.0
            for severity in range(1, 6):
                ours = corrupt(image, name, severity, suite=f"medmnist-c/{dataset}").astype(int)
                diff = np.abs(ours - reference(dataset, name, image, severity).astype(int))
                exact, within = min(exact, (diff == 0).mean()), min(within, (diff <= 1).mean())
            rows.append(f"| {dataset} | {name} | {100 * exact:.3f} | {100 * within:.3f} |")
    return rows


def motion_rows() -> list[str]:
    rows = []
    for rgb in (True, False):
        image = textured_image(224, rgb, seed=4)
        for radius, sigma in [(3, 3), (5, 5), (10, 5), (15, 8), (15, 12), (20, 15)]:
            exact = []
            for seed in range(3):
                np.random.seed(seed)
                angle = np.random.uniform(-45, 45)
                np.random.seed(seed)
                theirs = MotionBlur([(radius, sigma)]).apply(Image.fromarray(image).convert("RGB"), 0)
                if not rgb:
                    theirs = np.asarray(Image.fromarray(theirs).convert("L"))
                ours = blur.motion_blur_at(image.reshape(224, 224, -1), radius, sigma, angle).reshape(image.shape)
                exact.append((ours == np.asarray(theirs)).mean())
            rows.append(f"| {'RGB' if rgb else 'grey'} | ({radius}, {sigma}) | {100 * min(exact):.3f} |")
    return rows


def random_rows(draws: int = 24) -> list[str]:
    rows = []
    for dataset, table in CORRUPTIONS_DS.items():
        image = textured_image(224, DATASET_RGB[dataset], seed=5)
        for name in table:
            if name not in RANDOM:
                continue
            CORRUPTIONS_DS[dataset][name].rng = np.random.default_rng(0)
            for severity in (1, 5):
                np.random.seed(0)
                random.seed(0)
                theirs = np.stack([reference(dataset, name, image, severity) for _ in range(draws)]).astype(float)
                ours = np.stack(
                    [corrupt(image, name, severity, suite=f"medmnist-c/{dataset}", key=k) for k in range(draws)]
                ).astype(float)
                stats = []
                for out in (ours, theirs):
                    diff = out - image
                    stats.append((diff.mean(), diff.std(), 100 * (diff != 0).mean()))
                (m1, s1, c1), (m2, s2, c2) = stats
                rows.append(
                    f"| {dataset} | {name} | {severity} | {m1:.2f} / {m2:.2f} | {s1:.2f} / {s2:.2f} "
                    f"| {c1:.1f} / {c2:.1f} |"
                )
    return rows


def main() -> None:
    print("## Deterministic corruptions (worst severity), % of pixels\n")
    print("| dataset | corruption | identical | within ±1 |\n|---|---|---:|---:|")
    print("\n".join(deterministic_rows()))
    print("\n## Motion blur with the reference's angle (ImageMagick 6 Q16), % identical, worst of 3 angles\n")
    print("| image | (radius, σ) | identical |\n|---|---|---:|")
    print("\n".join(motion_rows()))
    print("\n## Random corruptions: (corrupted − clean), ours / reference, 24 draws\n")
    print("| dataset | corruption | severity | mean | std | % changed |\n|---|---|---:|---:|---:|---:|")
    print("\n".join(random_rows()))


if __name__ == "__main__":
    main()
