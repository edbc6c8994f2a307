"""The cost of corruption augmentation (``augment:`` in the RobustMedCLIP config) per training step.

Feeds the training set of RobustMedCLIP (``AugmentedImages``: PNG decode → [RandomCorruption] → random resized crop,
flip → normalise) through a ``DataLoader`` with worker processes, with and without the corruption augmentation, on
224-px images, and prints images per second of each. With ``--train`` every batch also goes through a LoRA training
step of BiomedCLIP's ViT-B/16 image tower (random weights, as ``bench/train.py``), so the figure is the whole step's
with the loader overlapping the model (on a GPU, the loader is what can limit it).

    python bench/augment.py [--workers 2] [--images 128] [--batch-size 16] [--augment seen] [--suite imagenet-c]
                            [--repeats 3] [--train] [--device cpu|cuda]

Prints one JSON line per mode (the median of alternated runs, and the runs) and the ratio augmented / clean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def training_images(count: int, size: int = 224) -> list[bytes]:
    """PNG-encoded RGB images with gradients, edges and texture, as a benchmark's clean configs store them."""
    from hf_robustmed.data.png import encode_png

    yy, xx = np.mgrid[0:size, 0:size] / size
    images = []
    for i in range(count):
        rng = np.random.default_rng(i)
        base = np.stack([xx * 180 + 40, yy * 150 + 60, (xx + yy) * 90 + 30], axis=2)
        base[size // 4 : size // 2, size // 3 : 2 * size // 3] += 50 * rng.random()
        base += rng.normal(0, 8, base.shape)
        images.append(encode_png(np.clip(base, 0, 255).astype(np.uint8)))
    return images


def make_dataset(images: list[bytes], augment: str | None, suite: str, seed: int = 0):
    from hf_robustmed.adaptation.data import AugmentedImages, corruption_augmenters

    augmenter = corruption_augmenters(["bench"], augment, suite=suite, seed=seed)["bench"]
    return AugmentedImages(
        images,
        np.zeros(len(images), np.int64),
        size=224,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        seed=seed,
        corruptions=[augmenter] * len(images) if augmenter else None,
    )


def build_step(device: str):
    """A LoRA training step of the ViT-B/16 image tower (``bench/train.py``'s model) on one batch."""
    import torch
    from train import CLASSES, build_model

    from hf_robustmed.adaptation.config import QKV_TARGET
    from hf_robustmed.adaptation.lora import LoraClassifier, add_lora

    torch.manual_seed(0)
    model = build_model()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model = add_lora(model, "bench/vit-b16", rank=16, alpha=16, dropout=0.0, target_modules=QKV_TARGET)
    head = LoraClassifier(model, torch.randn(CLASSES, 512)).to(device).train()
    optimizer = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=1e-4)

    def step(pixels, labels):
        loss = torch.nn.functional.cross_entropy(
            head(pixels.to(device, non_blocking=True)).float(), labels.to(device) % CLASSES
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def measure(dataset, workers: int, batch_size: int, epochs: int, step=None) -> float:
    """Images per second over ``epochs`` epochs after a warm-up epoch (workers started, caches filled)."""
    import torch

    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        shuffle=False,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
    for epoch in range(epochs + 1):
        if epoch == 1:
            started = time.perf_counter()
        dataset.set_epoch(epoch)
        for pixels, labels in loader:
            if step is not None:
                step(pixels, labels)
    return len(dataset) * epochs / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (default: 2)")
    parser.add_argument("--images", type=int, default=128, help="training images (default: 128)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per step (default: 16)")
    parser.add_argument("--epochs", type=int, default=2, help="measured epochs after one warm-up (default: 2)")
    parser.add_argument("--augment", default="seen", help="the config's augment: seen, all or names (default: seen)")
    parser.add_argument("--suite", default="imagenet-c", help="augmentation suite (default: imagenet-c)")
    parser.add_argument("--repeats", type=int, default=3, help="alternated measurements; the median (default: 3)")
    parser.add_argument("--train", action="store_true", help="add a LoRA ViT-B/16 training step per batch")
    parser.add_argument("--device", default="cpu", help="device of the training step (default: cpu)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    images = training_images(args.images)
    step = build_step(args.device) if args.train else None
    modes = {"clean": None, "augmented": args.augment}
    runs: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.repeats):  # alternated, so that a change in the machine's load hits both modes
        for mode, augment in modes.items():
            runs[mode].append(
                measure(make_dataset(images, augment, args.suite), args.workers, args.batch_size, args.epochs, step)
            )
    speeds = {mode: float(np.median(values)) for mode, values in runs.items()}
    for mode, augment in modes.items():
        print(
            json.dumps(
                {
                    "mode": mode,
                    "augment": augment,
                    "suite": args.suite,
                    "workers": args.workers,
                    "train_step": args.train,
                    "device": args.device if args.train else "cpu (loader only)",
                    "images_per_second": round(speeds[mode], 1),
                    "runs": [round(v, 1) for v in runs[mode]],
                }
            )
        )
    print(json.dumps({"augmented_over_clean": round(speeds["augmented"] / speeds["clean"], 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
