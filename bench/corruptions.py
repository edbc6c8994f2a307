"""Images per second of our corruption engine, next to the MedMNIST-C reference measured in the same run.

    python bench/corruptions.py [--reference-python .venv-ref/bin/python] [--images 16] [--datasets ...]

For every MedMNIST-C (dataset, corruption) at 224 px, on the dataset's own channel format (RGB or grey), both
engines corrupt the same images at all five severities in one process; the reference runs in its own environment
(``make ref-env``: medmnistc needs numpy < 2.3 and ImageMagick) and is timed there by
``bench/_medmnistc_reference.py``. Prints Markdown tables with the ratio per corruption, their geometric mean, and
our throughput on the ImageNet-C / MediMeta-C suites (RGB and grey), and writes JSON to ``bench/out/``.
Timings are the best of ``--repeats`` runs; both engines use their default threading (OpenCV's and
ImageMagick's thread pools) unless ``--threads 1``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hf_robustmed.corruptions import SUITES, corrupt, list_corruptions  # noqa: E402
from hf_robustmed.corruptions.suites import MEDMNIST_DATASETS  # noqa: E402


def bench_images(count: int, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Natural-looking RGB images (gradients, edges, texture) and their PIL-luma grey versions."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for i in range(count):
        f = rng.uniform(3, 12, 3)
        base = 0.5 + 0.25 * np.sin(f[0] * xx + f[1] * yy + i) + 0.15 * np.cos(f[2] * yy)
        image = np.stack([base, np.roll(base, 20, 0), 0.6 * base.T + 0.2], -1) + rng.normal(0, 0.05, (size, size, 3))
        images.append((np.clip(image, 0, 1) * 255).astype(np.uint8))
    rgb = np.stack(images)
    grey = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])
    return rgb, grey


def time_ours(suite: str, name: str, images: np.ndarray, repeats: int) -> float:
    corrupt(images[0], name, 1, suite=suite)  # warm-up: caches, lazy imports
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for severity in range(1, 6):
            for key, image in enumerate(images):
                corrupt(image, name, severity, suite=suite, seed=0, key=key)
        best = min(best, time.perf_counter() - start)
    return 5 * len(images) / best


def time_reference(python: str, pairs: list[str], rgb: np.ndarray, grey: np.ndarray, repeats: int, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npz"
        np.savez(path, rgb=rgb, grey=grey)
        command = [python, str(ROOT / "bench" / "_medmnistc_reference.py"), "--images", str(path),
                   "--pairs", ",".join(pairs), "--repeats", str(repeats)]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python", default=os.environ.get("HF_ROBUSTMED_REFERENCE_PYTHON", ".venv-ref/bin/python"),
                        help="python of the environment with medmnistc; 'none' to skip the reference")
    parser.add_argument("--images", type=int, default=16, help="images per severity (default 16)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--datasets", default=",".join(MEDMNIST_DATASETS), help="MedMNIST-C datasets to cover")
    parser.add_argument("--threads", type=int, default=0, help="limit OpenCV/ImageMagick/OpenMP threads (0: defaults)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "corruptions.json"))
    args = parser.parse_args()

    env = dict(os.environ)
    if args.threads:
        import cv2

        cv2.setNumThreads(args.threads)
        env.update(OMP_NUM_THREADS=str(args.threads), MAGICK_THREAD_LIMIT=str(args.threads))
    rgb, grey = bench_images(args.images)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]

    rows, pairs = [], []
    for dataset in datasets:
        suite = f"medmnist-c/{dataset}"
        images = rgb if SUITES[suite].rgb else grey
        for name in list_corruptions(suite):
            rows.append({"dataset": dataset, "corruption": name, "channels": "RGB" if SUITES[suite].rgb else "grey",
                         "ours": time_ours(suite, name, images, args.repeats)})
            pairs.append(f"{dataset}/{name}")

    reference_python = args.reference_python
    have_reference = reference_python != "none" and Path(reference_python).exists()
    if have_reference:
        reference = time_reference(reference_python, pairs, rgb, grey, args.repeats, env)
        for row, pair in zip(rows, pairs):
            row["reference"] = reference[pair]
            row["ratio"] = row["ours"] / row["reference"]
    else:
        print(f"(reference not measured: no python at {reference_python!r}; `make ref-env` builds it)\n")

    print(f"## MedMNIST-C at 224 px: images/s, {args.images} images × 5 severities, best of {args.repeats}\n")
    header = "| dataset | corruption | ch | ours img/s | medmnistc img/s | ratio |"
    print(header + "\n|---|---|---|---:|---:|---:|")
    for row in rows:
        ref = f"{row['reference']:.0f}" if "reference" in row else "–"
        ratio = f"{row['ratio']:.1f}×" if "ratio" in row else "–"
        print(f"| {row['dataset']} | {row['corruption']} | {row['channels']} | {row['ours']:.0f} | {ref} | {ratio} |")

    summary = {}
    if have_reference:
        ratios = [row["ratio"] for row in rows]
        slowest = min(rows, key=lambda r: r["ratio"])
        by_name = {}
        for row in rows:
            by_name.setdefault(row["corruption"], []).append(row["ratio"])
        summary = {
            "geometric_mean_ratio": geometric_mean(ratios),
            "min_ratio": slowest["ratio"],
            "min_ratio_at": f"{slowest['dataset']}/{slowest['corruption']}",
            "per_corruption_geometric_mean": {k: geometric_mean(v) for k, v in by_name.items()},
        }
        print("\n## Ratio per corruption (geometric mean over datasets)\n")
        print("| corruption | ratio | min over datasets |\n|---|---:|---:|")
        for name, values in sorted(by_name.items(), key=lambda kv: geometric_mean(kv[1])):
            print(f"| {name} | {geometric_mean(values):.1f}× | {min(values):.1f}× |")
        print(f"\n**Geometric mean over {len(ratios)} (dataset, corruption) pairs: "
              f"{summary['geometric_mean_ratio']:.1f}×**; slowest: {summary['min_ratio_at']} "
              f"at {summary['min_ratio']:.2f}×.")

    print("\n## ImageNet-C / MediMeta-C suite, ours only: images/s at 224 px\n")
    print("| corruption | RGB | grey |\n|---|---:|---:|")
    generic = []
    for name in list_corruptions("imagenet-c"):
        speeds = [time_ours("imagenet-c", name, images, 1) for images in (rgb[:4], grey[:4])]
        generic.append({"corruption": name, "rgb": speeds[0], "grey": speeds[1]})
        print(f"| {name} | {speeds[0]:.0f} | {speeds[1]:.0f} |")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"medmnist_c": rows, "summary": summary, "imagenet_c": generic}, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
