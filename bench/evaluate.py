"""Throughput of our zero-shot evaluation against the bare image-encoder forward pass and a naive loop.

    python bench/evaluate.py [--images 32] [--batch-size 32] [--model ViT-B-16]

A ViT-B/16-sized open_clip CLIP with random weights (saved in open_clip's layout and loaded through our zoo) is
evaluated on a small synthetic MedMNIST-C benchmark (bloodmnist, 224 px, clean + 2 corruptions × 2 severities),
three ways, in this run:

* **ours**: ``hf_robustmed.evaluation`` (decode, preprocess, encode, per-cell predictions written to Parquet);
* **bare forward**: only ``encode_image`` on the same batches, already decoded and preprocessed — the limit;
* **naive**: a loop that, per batch, re-encodes the class prompts and decodes images with PIL.

Prints images/s and the ratios; the goal is ours ≥ 85 % of the bare forward pass.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from build import synthetic_medmnist  # noqa: E402

from hf_robustmed.data import build_benchmark  # noqa: E402
from hf_robustmed.data.benchmarks import medmnist_c_jobs  # noqa: E402
from hf_robustmed.evaluation import Evaluator, iter_images, plan_cells  # noqa: E402


def save_random_open_clip(folder: Path, arch: str) -> Path:
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = open_clip.get_model_config(arch)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="ViT-B-16")
    args = parser.parse_args()

    import torch
    from PIL import Image

    from hf_robustmed.models import create_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic_medmnist(tmp / "bloodmnist_224.npz", "bloodmnist", args.images)
        jobs = medmnist_c_jobs(tmp, datasets=["bloodmnist"], corruptions=["pixelate", "motion_blur"], severities=(1, 5))
        build_benchmark(jobs, tmp / "bench", progress=False)
        spec = f"local-dir:{save_random_open_clip(tmp / 'model', args.model)}"
        cells = plan_cells(tmp / "bench")
        total = len(cells) * args.images
        model = create_model(spec)
        names = json.loads((tmp / "bench" / "benchmark.json").read_text())["datasets"]["bloodmnist"]["class_names"]

        # bare forward: the same batches, decoded and preprocessed beforehand
        batches = [model.preprocess_arrays(images) for cell in cells for images, _, _ in iter_images(tmp / "bench", cell, args.batch_size)]
        with torch.no_grad():
            model.module.encode_image(batches[0])  # warm-up
        start = time.perf_counter()
        with torch.no_grad():
            for pixels in batches:
                model.module.encode_image(pixels)
        bare = total / (time.perf_counter() - start)

        evaluator = Evaluator(tmp / "bench", tmp / "out", batch_size=args.batch_size)
        start = time.perf_counter()
        evaluator.run([model], cells)  # the loaded model: loading time is not throughput
        ours = total / (time.perf_counter() - start)

        import pyarrow.parquet as pq

        start = time.perf_counter()
        for cell in cells:
            for file in sorted((tmp / "bench" / cell.config).glob("test-*.parquet")):
                column = pq.read_table(file, columns=["image"]).column("image").to_pylist()
                for at in range(0, len(column), args.batch_size):
                    chunk = column[at : at + args.batch_size]
                    images = [np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB")) for c in chunk]
                    weights = model.classifier(names, "bloodmnist")  # re-encoded per batch
                    model.logits(model.encode_images(model.preprocess_arrays(images)), weights)
        naive = total / (time.perf_counter() - start)

    print(f"## Zero-shot evaluation throughput: {args.model} (random weights), CPU, batch {args.batch_size}, "
          f"{len(cells)} cells × {args.images} images\n")
    print("| pipeline | images/s | vs bare forward |\n|---|---:|---:|")
    for label, speed in (("bare image-encoder forward", bare), ("hf-robustmed evaluation", ours), ("naive loop", naive)):
        print(f"| {label} | {speed:.1f} | {100 * speed / bare:.0f} % |")


if __name__ == "__main__":
    main()
