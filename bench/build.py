"""Images per second of a 224-px MedMNIST-C build of one dataset: ours with 1 and 2 workers, and the reference.

    python bench/build.py [--flag bloodmnist] [--images 40] [--reference-python .venv-ref/bin/python]

Writes a synthetic ``{flag}_224.npz`` (MedMNIST's format; smooth, textured images) and builds its MedMNIST-C test
configs three ways, all in this run: our builder in-process (1 worker) and with 2 worker processes (Parquet
with PNG images, dataset card; best of ``--repeats`` runs), and medmnistc's DatasetManager in its own environment
(``make ref-env``), which writes compressed npz files. "Images" counts corrupted test images
(N × corruptions × 5 severities).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hf_robustmed.corruptions import list_corruptions  # noqa: E402
from hf_robustmed.data import build_benchmark  # noqa: E402
from hf_robustmed.data.benchmarks import medmnist_c_jobs  # noqa: E402
from hf_robustmed.data.medmnist import MEDMNIST_INFO  # noqa: E402


def synthetic_medmnist(path: Path, flag: str, count: int) -> None:
    """A ``{flag}_224.npz`` of smooth, textured 224-px images (cells on a background) in MedMNIST's layout."""
    rng = np.random.default_rng(0)
    info = MEDMNIST_INFO[flag]
    yy, xx = np.mgrid[0:224, 0:224]
    images = []
    for _ in range(count):
        image = np.empty((224, 224, 3))
        image[:] = rng.uniform(0.6, 0.95, 3)
        for _ in range(rng.integers(3, 9)):
            cy, cx, r = rng.uniform(0, 224), rng.uniform(0, 224), rng.uniform(10, 35)
            d = np.hypot(yy - cy, xx - cx)
            image[d < r] = rng.uniform(0.2, 0.7, 3)
            image[d < 0.5 * r] = rng.uniform(0.1, 0.5, 3)
        image += rng.normal(0, 0.015, image.shape)
        images.append((np.clip(image, 0, 1) * 255).astype(np.uint8))
    test = np.stack(images) if info.rgb else np.stack(images)[..., 1]
    labels = rng.integers(0, len(info.labels), (count, 1)).astype(np.uint8)
    np.savez_compressed(
        path,
        train_images=test[:2],
        train_labels=labels[:2],
        val_images=test[:2],
        val_labels=labels[:2],
        test_images=test,
        test_labels=labels,
    )


def time_ours(root: Path, flag: str, workers: int, out: Path) -> float:
    if out.exists():
        shutil.rmtree(out)
    start = time.perf_counter()
    jobs = medmnist_c_jobs(root, datasets=[flag])
    build_benchmark(jobs, out, name="MedMNIST-C", num_workers=workers, shard_rows=10, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flag", default="bloodmnist")
    parser.add_argument("--images", type=int, default=100, help="test images in the synthetic source (default 100)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of our builder per setting; the best counts")
    parser.add_argument(
        "--reference-python",
        default=os.environ.get("HF_ROBUSTMED_REFERENCE_PYTHON", str(ROOT / ".venv-ref" / "bin" / "python")),
    )
    args = parser.parse_args()

    corrupted = args.images * 5 * len(list_corruptions(f"medmnist-c/{args.flag}"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic_medmnist(tmp / f"{args.flag}_224.npz", args.flag, args.images)
        one = min(time_ours(tmp, args.flag, 0, tmp / "ours1") for _ in range(args.repeats))
        two = min(time_ours(tmp, args.flag, 2, tmp / "ours2") for _ in range(args.repeats))
        same = all(
            (tmp / "ours1" / p.relative_to(tmp / "ours2")).read_bytes() == p.read_bytes()
            for p in (tmp / "ours2").rglob("*.parquet")
        )
        reference = None
        if Path(args.reference_python).exists():
            done = subprocess.run(
                [
                    args.reference_python,
                    str(ROOT / "bench" / "_medmnistc_build_reference.py"),
                    "--root",
                    str(tmp),
                    "--flag",
                    args.flag,
                    "--out",
                    str(tmp / "ref"),
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            reference = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]

    print(f"## MedMNIST-C build of {args.flag} at 224 px: {args.images} test images → {corrupted} corrupted images\n")
    print("| builder | seconds | images/s | ratio |\n|---|---:|---:|---:|")
    rows = [("hf-robustmed, 1 worker", one), ("hf-robustmed, 2 workers", two)]
    if reference is not None:
        rows.append(("medmnistc DatasetManager", reference))
    base = reference or one
    for label, seconds in rows:
        print(f"| {label} | {seconds:.1f} | {corrupted / seconds:.0f} | {base / seconds:.2f}× |")
    print(f"\n2 workers vs 1: {one / two:.2f}×; identical Parquet bytes with 1 and 2 workers: {same}")
    if reference is None:
        print(f"(reference not measured: no python at {args.reference_python}; `make ref-env` builds it)")


if __name__ == "__main__":
    main()
