"""LoRA (PEFT, the RobustMedCLIP recipe) against full fine-tuning of a ViT-B/16 image tower: speed and memory.

Both runs train BiomedCLIP's image-tower architecture (timm ``vit_base_patch16_224`` + linear projection, 86 M
parameters, random weights: nothing is downloaded) against frozen class text features with the library's own
``LoraClassifier`` and AdamW, prepared by ``accelerate``, on the same batches, batch size and precision. Each mode
runs in its own process so that its peak resident memory is its own.

    python bench/train.py [--batch-size 16] [--steps 5] [--precision no|bf16] [--device cpu|cuda]

Prints images per second and peak memory (CPU: max RSS; GPU: max allocated) of each mode and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CLASSES = 57  # the paper's joint label space


def build_model():
    import open_clip

    vision = {
        "timm_model_name": "vit_base_patch16_224",
        "timm_model_pretrained": False,
        "timm_pool": "",
        "timm_proj": "linear",
        "image_size": 224,
    }
    text = {"context_length": 16, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}  # not in the training step
    return open_clip.model.CustomTextCLIP(embed_dim=512, vision_cfg=vision, text_cfg=text)


def run_mode(mode: str, batch_size: int, steps: int, warmup: int, precision: str, device: str) -> dict:
    import torch
    from accelerate import Accelerator

    from hf_robustmed.adaptation.config import QKV_TARGET
    from hf_robustmed.adaptation.lora import LoraClassifier, add_lora, trainable_parameters

    torch.manual_seed(0)
    accelerator = Accelerator(mixed_precision=precision, cpu=device == "cpu")
    model = build_model()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if mode == "lora":
        model = add_lora(model, "bench/vit-b16", rank=16, alpha=16, dropout=0.0, target_modules=QKV_TARGET)
    else:
        for parameter in model.visual.parameters():
            parameter.requires_grad_(True)
    head = LoraClassifier(model, torch.randn(CLASSES, 512))
    optimizer = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-4)
    head, optimizer = accelerator.prepare(head, optimizer)
    generator = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.randn(batch_size, 3, 224, 224, generator=generator),
            torch.randint(0, CLASSES, (batch_size,), generator=generator),
        )
        for _ in range(2)
    ]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    head.train()
    for step in range(warmup + steps):
        if step == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        pixels, labels = (t.to(accelerator.device) for t in batches[step % 2])
        loss = torch.nn.functional.cross_entropy(head(pixels).float(), labels)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    trainable, total = trainable_parameters(head)
    peak = (
        torch.cuda.max_memory_allocated()
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "mode": mode,
        "images_per_second": batch_size * steps / elapsed,
        "peak_memory_gib": peak / 2**30,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "loss": float(loss),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed optimiser steps per mode")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--mode", choices=["lora", "full"], help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.batch_size, args.steps, args.warmup, args.precision, args.device)))
        return 0
    results = {}
    for mode in ("full", "lora"):
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--batch-size",
                str(args.batch_size),
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--precision",
                args.precision,
                "--device",
                args.device,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"ViT-B/16 image tower, batch {args.batch_size}, precision {args.precision}, device {args.device}, "
        f"{args.steps} timed steps after {args.warmup} warm-up"
    )
    print("| mode | trainable parameters | images/s | peak memory (GiB) |\n|---|---:|---:|---:|")
    for mode, r in results.items():
        print(f"| {mode} | {r['trainable_parameters']:,} | {r['images_per_second']:.2f} | {r['peak_memory_gib']:.2f} |")
    speed = results["lora"]["images_per_second"] / results["full"]["images_per_second"]
    memory = results["lora"]["peak_memory_gib"] / results["full"]["peak_memory_gib"]
    print(f"LoRA / full fine-tuning: {speed:.2f}x images per second, {memory:.2f}x peak memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
