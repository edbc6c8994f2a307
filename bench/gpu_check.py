"""The prepared GPU check: one command, a few minutes, on a machine with an accelerator.

    python bench/gpu_check.py                 # on a GPU machine (defaults sized for an H100/H200-class GPU)
    python bench/gpu_check.py --device cpu --images 96 --batch-size 16 --steps 1 --arch ViT-B-16   # smoke run

What it measures, all in this run, with a ViT-B/16 in open_clip's layout (random weights: nothing is downloaded):

1. **evaluation vs bare forward** (bf16, batch 256): images/s of ``hf_robustmed.evaluation`` (loader workers,
   batched preprocessing on the device, per-cell Parquet) against ``encode_image`` alone on batches already on the
   GPU, marginal over a big and a small benchmark (start-up costs cancel). Goal ≥ 85 %.
2. **on the fly**: the same with a cheap (pixelate) and a slow (zoom blur) corruption made in the loader workers.
3. **training**: LoRA (the RobustMedCLIP recipe) vs full fine-tuning of the image tower, images/s and peak memory
   (``bench/train.py``).
4. **2 GPUs**, if present: the evaluation on two processes (``torchrun``), against one.

Prints one Markdown table to paste into the README.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from evaluate import build, run_timed, save_open_clip  # noqa: E402


def bare_rate(spec: str, bench: Path, batch_size: int, device: str, precision: str) -> float:
    """Images/s of ``encode_image`` alone on preprocessed batches already on the device."""
    import torch

    from hf_robustmed.data.loader import images_tensor
    from hf_robustmed.data.reader import ShardRows
    from hf_robustmed.models import create_model

    model = create_model(spec, device=device)
    rows = ShardRows(bench, "dermamnist-clean", "test")
    batches = []
    for start in range(0, len(rows) - batch_size + 1, batch_size):
        images = images_tensor(rows.read(start, start + batch_size).images).to(device)
        batches.append(model.preprocess_batch(images))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    with torch.no_grad(), torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=dtype is not None):
        model.module.encode_image(batches[0])  # warm-up (kernels, autotuning)
        _sync(device)
        start = time.perf_counter()
        for pixels in batches:
            model.module.encode_image(pixels)
        _sync(device)
    return len(batches) * batch_size / (time.perf_counter() - start)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def eval_rate(
    spec: str,
    big: Path,
    small: Path,
    n_big: int,
    n_small: int,
    tmp: Path,
    *,
    batch_size: int,
    precision: str,
    corruption: str = "clean",
    processes: int = 1,
    device: str = "cuda",
) -> float:
    """Marginal images/s of the evaluation (each run in fresh processes, as a user runs it)."""

    def seconds(bench: Path) -> float:
        command = [
            str(ROOT / "bench" / "gpu_check.py"),
            "--child",
            str(bench),
            "--spec",
            spec,
            "--corruption",
            corruption,
            "--batch-size",
            str(batch_size),
            "--precision",
            precision,
            "--out",
            str(tmp / f"out-{time.monotonic_ns()}"),
            "--device",
            device,
        ]
        launcher = (
            [sys.executable]
            if processes == 1
            else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
        )
        done = subprocess.run([*launcher, *command], capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]

    return (n_big - n_small) / max(seconds(big) - seconds(small), 1e-9)


def child(args: argparse.Namespace) -> None:
    import os

    if args.device == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "1"
    run_timed(
        Path(args.child),
        args.spec,
        Path(args.out),
        args.corruption,
        batch_size=args.batch_size,
        mixed_precision=args.precision,
        on_the_fly=args.corruption != "clean",
    )


def training(batch_size: int, steps: int, precision: str, device: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "train.py"),
            "--batch-size",
            str(batch_size),
            "--steps",
            str(steps),
            "--warmup",
            "2",
            "--precision",
            precision,
            "--device",
            device,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8192, help="images of the big benchmark")
    parser.add_argument("--small", type=int, default=1024, help="images of the small benchmark")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--precision", default="bf16", choices=["no", "bf16", "fp16"])
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture (random weights)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per mode (0: skip training)")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--corruption", default="clean", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import open_clip
    import torch

    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    if args.device == "cuda" and not gpus:
        raise SystemExit("no CUDA device: run with --device cpu for a smoke run")
    device = "cuda:0" if gpus else "cpu"
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big, small = build(tmp / "big", args.images), build(tmp / "small", args.small)
        spec = save_open_clip(tmp / "model", open_clip.get_model_config(args.arch))
        common = dict(
            spec=spec,
            big=big,
            small=small,
            n_big=args.images,
            n_small=args.small,
            tmp=tmp,
            batch_size=args.batch_size,
            precision=args.precision,
            device=args.device,
        )
        bare = bare_rate(spec, big, args.batch_size, device, args.precision)
        rows.append(("bare `encode_image` (batches on the device)", bare, ""))
        ours = eval_rate(**common)
        rows.append(("evaluation, stored images", ours, f"{100 * ours / bare:.0f} % of bare (goal ≥ 85 %)"))
        for corruption in ("pixelate", "zoom_blur"):
            rate = eval_rate(**common, corruption=corruption)
            rows.append((f"evaluation, {corruption} on the fly", rate, f"{100 * rate / bare:.0f} % of bare"))
        if gpus >= 2:
            two = eval_rate(**common, processes=2)
            rows.append(("evaluation, 2 GPUs (torchrun)", two, f"{two / ours:.2f}× one GPU"))
    name = torch.cuda.get_device_name(0) if gpus else "CPU"
    print(
        f"## GPU check: {args.arch} (random weights), {args.precision}, batch {args.batch_size}, {name}, "
        f"{gpus} GPU(s), {args.images} − {args.small} images (marginal)\n"
    )
    print("| what | images/s | ratio |\n|---|---:|---|")
    for label, rate, ratio in rows:
        print(f"| {label} | {rate:,.0f} | {ratio} |")
    if args.steps:
        print()
        print(training(min(args.batch_size, 256), args.steps, args.precision, "cuda" if gpus else "cpu"))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
