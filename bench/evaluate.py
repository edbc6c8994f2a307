"""Throughput of the zero-shot evaluation's input pipeline and of a ViT-B/16 evaluation, in one run.

    python bench/evaluate.py [--images 1600] [--small 160] [--batch-size 64] [--vit-images 64]

On one synthetic 224-px MedMNIST-C benchmark (dermamnist, RGB), built once:

1. **decode**: ``cv2.imdecode`` of the stored PNGs, one thread — the cost floor of reading a stored image;
2. **pipeline**: marginal images/s of ``hf_robustmed.evaluation`` with a nearly free 224-px model (a 1-layer,
   width-16 open_clip ViT at patch 32, so the pipeline is what is timed): 1 process with 0 and N loader workers,
   and 2 processes (torchrun, ``ACCELERATE_USE_CPU``). Marginal = (big run − small run) images / seconds, so
   imports, model creation and process start cancel;
3. **on the fly vs stored** for two cheap corruptions (brightness, which keeps the image's content, and pixelate,
   whose smoothed images are themselves quicker to decode than the clean ones — stored, they cost less than a
   clean image, so on the fly it is also compared with the clean pipeline) at all five severities, as users run
   them (on the fly, the five cells share each clean image's decode), and a slow one (zoom blur, severity 3);
4. **ViT-B/16** (random weights in open_clip's layout): evaluation images/s against the bare ``encode_image`` on
   the same, already preprocessed batches.

Goals on a 2-core machine: pipeline (1 process) ≥ 1.0× one core's decode; 2 processes ≥ 1.4× one;
on the fly within 1.5× of stored for cheap corruptions; ViT-B/16 evaluation ≥ 85 % of its bare forward on a GPU
(on a CPU the forward dominates). Every figure is measured in this run; the goals are printed beside them.

Beside each rate, the CPU time it cost per image (marginal too: every process of the run, main and workers) and
the ceiling that cost allows on this machine's cores (cores / CPU per image): a pipeline cannot beat it, however
well it overlaps. A second table breaks one image's cost down on one core (decode, corruption, the main process's
preprocessing and forward), so a goal that the ceiling rules out is shown with its cause. Child runs use one torch
thread per process (``OMP_NUM_THREADS=1``: the loader workers, or the other process, have the other core). The
CPU that other work took meanwhile is printed: it lowers the wall-clock rates, hardly the CPU costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

# cheap corruptions (one that keeps the image's content, one that smooths it) and a slow one
CORRUPTIONS = {"brightness_up": "cheap", "pixelate": "cheap", "zoom_blur": "slow"}
# the severities timed: all five of the cheap ones (as users evaluate them: on the fly, their cells share each clean
# image's decode), the slow one at severity 3 (its corruption dominates anyway)
SEVERITIES = {"brightness_up": (1, 2, 3, 4, 5), "pixelate": (1, 2, 3, 4, 5), "zoom_blur": (3,)}


def save_open_clip(folder: Path, model_cfg: dict) -> str:
    """An open_clip model with random weights in open_clip's Hub layout; returns its ``local-dir:`` spec."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
    torch.manual_seed(0)
    model = open_clip.model.CLIP(**model_cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return f"local-dir:{folder}"


def nearly_free_config() -> dict:
    """A 224-px CLIP whose forward costs almost nothing: 49 patches, one layer of width 16."""
    return {
        "embed_dim": 16,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 224, "layers": 1, "width": 16, "head_width": 16, "patch_size": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 1, "layers": 1},
    }


def build(folder: Path, images: int) -> Path:
    """The benchmark: dermamnist clean + the cheap and the slow corruption at every severity."""
    from build import synthetic_medmnist

    from hf_robustmed.data import build_benchmark
    from hf_robustmed.data.benchmarks import medmnist_c_jobs

    folder.mkdir(parents=True, exist_ok=True)
    synthetic_medmnist(folder / "dermamnist_224.npz", "dermamnist", images)
    jobs = medmnist_c_jobs(folder, datasets=["dermamnist"], corruptions=list(CORRUPTIONS))
    build_benchmark(jobs, folder / "bench", progress=False, num_workers=min(8, os.cpu_count() or 1), shard_rows=500)
    return folder / "bench"


def run_timed(
    bench: Path, spec: str, out: Path, corruption: str, severities: tuple[int, ...] = (3,), **evaluator_kwargs
) -> None:
    """One timed evaluation of the cells of ``corruption`` at ``severities`` (model creation excluded); the main
    process prints the seconds and the CPU seconds of every process (see :func:`timed`) as JSON. Run in its own
    process(es) by :func:`timed` and ``bench/gpu_check.py``."""
    import torch

    from hf_robustmed.evaluation import Evaluator, plan_cells
    from hf_robustmed.models import create_model

    wanted = None if corruption == "clean" else [corruption]
    cells = [
        c
        for c in plan_cells(bench, corruptions=wanted)
        if c.corruption == corruption and (corruption == "clean" or c.severity in severities)
    ]
    evaluator = Evaluator(bench, out, **evaluator_kwargs)
    model = create_model(spec, device=str(evaluator.accelerator.device))
    evaluator.accelerator.wait_for_everyone()
    start, cpu = time.perf_counter(), _cpu_seconds()
    evaluator.run([model], cells)
    evaluator.accelerator.wait_for_everyone()
    seconds = time.perf_counter() - start
    spent = [now - before for now, before in zip(_cpu_seconds(), cpu, strict=True)]
    device = evaluator.accelerator.device
    main, workers = evaluator.accelerator.gather(torch.tensor([spent], dtype=torch.float64, device=device)).sum(0)
    if evaluator.accelerator.is_main_process:  # CPU seconds summed over the processes
        print(json.dumps({"seconds": seconds, "cpu_main": float(main), "cpu_workers": float(workers)}), flush=True)
    # the process group ends before the interpreter does: a gloo group alive at exit aborted a rank once here
    evaluator.accelerator.end_training()


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its finished children (the loader workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def child(args: argparse.Namespace) -> None:
    run_timed(
        Path(args.bench),
        args.model,
        Path(args.out),
        args.corruption,
        SEVERITIES.get(args.corruption, (0,)),
        batch_size=args.batch_size,
        num_workers=args.workers,
        on_the_fly=args.on_the_fly,
    )


def timed(
    bench: Path,
    model: str,
    out: Path,
    *,
    corruption: str = "clean",
    workers: int = 0,
    processes: int = 1,
    on_the_fly: bool = False,
    batch_size: int = 64,
) -> dict:
    """One evaluation run in fresh process(es): ``seconds``, and the CPU seconds of the timed part (model creation
    and start-up excluded) of the main processes (``cpu_main``) and of their loader workers (``cpu_workers``)."""
    command = [
        __file__,
        "--child",
        "--bench",
        str(bench),
        "--model",
        model,
        "--out",
        str(out),
        "--corruption",
        corruption,
        "--workers",
        str(workers),
        "--batch-size",
        str(batch_size),
    ]
    command += ["--on-the-fly"] if on_the_fly else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    launcher = (
        [sys.executable]
        if processes == 1
        else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    )
    for attempt in range(2):
        fresh = command if attempt == 0 else [str(out) + "-again" if arg == str(out) else arg for arg in command]
        done = subprocess.run([*launcher, *fresh], capture_output=True, text=True, env=env, check=False)
        if not done.returncode:
            return json.loads(done.stdout.strip().splitlines()[-1])
        # a rare abort of a torchrun rank ("terminate called without an active exception") is run again, once,
        # into a fresh folder (cells the failed run stored would be reused, not timed)
        measured = '"seconds"' in done.stdout
        print(
            f"run failed (exit {done.returncode}, {'after' if measured else 'before'} its measurement), "
            f"{'running it again' if attempt == 0 else 'giving up'}: {done.stderr[-400:]}",
            file=sys.stderr,
        )
    raise RuntimeError(done.stderr[-3000:])


@dataclass
class Rate:
    """A marginal rate and what it cost: CPU milliseconds per image in the main processes and in their workers."""

    images_per_s: float
    main_ms: float
    workers_ms: float

    @property
    def total_ms(self) -> float:
        return self.main_ms + self.workers_ms

    def ceiling(self, cores: int) -> float:
        """The images/s that ``cores`` fully busy cores allow at this CPU cost per image."""
        return cores * 1e3 / self.total_ms

    def cost(self) -> str:
        split = f" ({self.main_ms:.2f} main + {self.workers_ms:.2f} workers)" if self.workers_ms > 0.01 else ""
        return f"{self.total_ms:.2f}{split}"


def marginal(big: Path, small: Path, n_big: int, n_small: int, model: str, tmp: Path, **kwargs) -> Rate:
    """Images/s of the big run beyond the small one (fixed costs cancel; images of every cell of the corruption
    timed), and its CPU cost; the faster of two."""
    rates, cells = [], len(SEVERITIES.get(kwargs.get("corruption", "clean"), (0,)))
    for attempt in range(2):
        a = timed(big, model, tmp / f"out-{time.monotonic_ns()}", **kwargs)
        b = timed(small, model, tmp / f"out-{time.monotonic_ns()}", **kwargs)
        n = (n_big - n_small) * cells
        main, workers = (1e3 * (a[key] - b[key]) / n for key in ("cpu_main", "cpu_workers"))
        rates.append(Rate(n / max(a["seconds"] - b["seconds"], 1e-9), main, workers))
    return max(rates, key=lambda rate: rate.images_per_s)


def decode_rate(bench: Path, config: str = "dermamnist-clean") -> float:
    """Images/s of ``cv2.imdecode`` over a config's stored PNGs, one thread."""
    import cv2
    import pyarrow.parquet as pq

    from hf_robustmed.data.reader import decode_png

    cv2.setNumThreads(1)
    blobs = [
        c["bytes"]
        for f in sorted((bench / config).glob("test-*.parquet"))
        for c in pq.read_table(f, columns=["image"]).column("image").to_pylist()
    ]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for blob in blobs:
            decode_png(blob)
        best = max(best, len(blobs) / (time.perf_counter() - start))
    return best


def one_core_costs(bench: Path, spec: str, tmp: Path, batch_size: int, images: int = 512) -> dict[str, float]:
    """CPU milliseconds per image of each step, on one thread of this process (best of three): ``read <config>``
    (Parquet read and decode of a stored config, as a loader worker does), ``fly <corruption>`` (the clean config
    read and corrupted, as on the fly; severity 3), ``fly <corruption> grouped`` (per image and cell: its timed
    severities' cells read as one group, each clean image decoded once), and the main process's share of a batch:
    ``preprocess`` (the model's
    batched transform, buffer reused as in the evaluation) and ``forward`` (the nearly free model, logits,
    softmax)."""
    import cv2
    import torch

    from hf_robustmed.data.loader import images_tensor
    from hf_robustmed.data.reader import CorruptedGroup, ShardRows
    from hf_robustmed.evaluation import Evaluator, plan_cells
    from hf_robustmed.models import create_model
    from hf_robustmed.models.preprocess import reuse_outputs

    def best(step, n: int) -> float:
        seconds = []
        for _ in range(3):
            start = time.thread_time()
            step()
            seconds.append(time.thread_time() - start)
        return 1e3 * min(seconds) / n

    def read(rows, n: int):
        batch = rows.read(0, n, channels_first=True)
        return images_tensor(batch.images, channels_first=batch.channels_first)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        costs = {}
        fly = Evaluator(bench, tmp / "costs-out", on_the_fly=True)
        cells = plan_cells(bench)
        for cell in cells:
            if cell.severity not in (0, 3):
                continue
            n = min(images, len(ShardRows(bench, cell.config, cell.split)))
            costs[f"read {cell.corruption}"] = best(lambda: read(ShardRows(bench, cell.config, cell.split), n), n)
            if cell.corruption != "clean":
                costs[f"fly {cell.corruption}"] = best(lambda: read(fly.rows(cell), n), n)
                cache: dict = {}
                group = CorruptedGroup(
                    [
                        fly.rows(c, cache)
                        for c in cells
                        if c.corruption == cell.corruption and c.severity in SEVERITIES[c.corruption]
                    ]
                )
                costs[f"fly {cell.corruption} grouped"] = best(lambda: read(group, n), n * len(group.members))
        model = create_model(spec)
        batch = read(ShardRows(bench, "dermamnist-clean", "test"), batch_size)
        classifier = torch.nn.functional.normalize(
            torch.randn(7, model.encode_images(model.preprocess_batch(batch[:1])).shape[1]), dim=-1
        )
        with reuse_outputs(), torch.no_grad():
            costs["preprocess"] = best(lambda: model.preprocess_batch(batch), batch_size)
            pixels = model.preprocess_batch(batch)
            forward = lambda: torch.softmax(model.logits(model.encode_images(pixels), classifier).float(), -1)  # noqa: E731
            costs["forward"] = best(forward, batch_size)
        return costs
    finally:
        torch.set_num_threads(threads)


def vit_rates(bench: Path, tmp: Path, batch_size: int) -> tuple[float, float]:
    """ViT-B/16 (random weights): our evaluation vs the bare forward on the same preprocessed batches, img/s."""
    import open_clip
    import torch

    from hf_robustmed.evaluation import Evaluator, iter_images, plan_cells
    from hf_robustmed.models import create_model

    spec = save_open_clip(tmp / "vit-b-16", open_clip.get_model_config("ViT-B-16"))
    model = create_model(spec)
    cells = [c for c in plan_cells(bench) if c.corruption == "clean"]
    batches = [
        model.preprocess_arrays(images) for cell in cells for images, _, _ in iter_images(bench, cell, batch_size)
    ]
    total = sum(len(b) for b in batches)
    with torch.no_grad():
        model.module.encode_image(batches[0][:2])  # warm-up
        start = time.perf_counter()
        for pixels in batches:
            model.module.encode_image(pixels)
    bare = total / (time.perf_counter() - start)
    evaluator = Evaluator(bench, tmp / "vit-out", batch_size=batch_size)
    start = time.perf_counter()
    evaluator.run([model], cells)
    return total / (time.perf_counter() - start), bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1600, help="images of the big benchmark")
    parser.add_argument("--small", type=int, default=160, help="images of the small benchmark (fixed costs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="loader workers of the N-workers runs (default: the library's default for one process)",
    )
    parser.add_argument("--vit-images", type=int, default=64, help="images of the ViT-B/16 run (0: skip it)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--bench", "--model", "--out", "--corruption"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--on-the-fly", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workers = int(args.workers)
        child(args)
        return

    from hf_robustmed.data.loader import default_num_workers

    workers = default_num_workers(1) if args.workers is None else args.workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big, small = build(tmp / "big", args.images), build(tmp / "small", args.small)
        model = save_open_clip(tmp / "free", nearly_free_config())
        runs = dict(
            big=big,
            small=small,
            n_big=args.images,
            n_small=args.small,
            model=model,
            tmp=tmp,
            batch_size=args.batch_size,
        )
        machine = _busy()
        decode = decode_rate(big)
        costs = one_core_costs(big, model, tmp, args.batch_size)
        one0 = marginal(**runs, workers=0)
        oneN = marginal(**runs, workers=workers)
        two0 = marginal(**runs, workers=0, processes=2)
        stored = {c: marginal(**runs, workers=workers, corruption=c) for c in CORRUPTIONS}
        fly = {c: marginal(**runs, workers=workers, corruption=c, on_the_fly=True) for c in CORRUPTIONS}
        other = _other_load(machine)
        vit = vit_rates(build(tmp / "vit", args.vit_images), tmp, min(args.batch_size, 32)) if args.vit_images else None
    report(args, workers, cores, decode, costs, one0, oneN, two0, stored, fly, vit, other)


def _busy() -> tuple[float, float, float] | None:
    """Now: wall seconds, the machine's busy CPU seconds (``/proc/stat``), and this process tree's CPU seconds."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    return time.monotonic(), busy, sum(_cpu_seconds())


def _other_load(start: tuple[float, float, float] | None) -> float | None:
    """Cores kept busy on average by other work than this benchmark's processes since ``start``."""
    end = _busy()
    if start is None or end is None:
        return None
    return max(0.0, (end[1] - start[1]) - (end[2] - start[2])) / (end[0] - start[0])


def report(args, workers, cores, decode, costs, one0, oneN, two0, stored, fly, vit, other) -> None:
    """Prints the two tables and what the measured costs say about each goal."""
    best_one = max(one0, oneN, key=lambda rate: rate.images_per_s)
    used = {0: 1}.get(workers, cores)  # cores a 1-process run can keep busy
    print(
        f"## Evaluation pipeline, dermamnist 224 px, {args.images} − {args.small} images (marginal), batch "
        f"{args.batch_size}, {cores} cores; other work kept "
        f"{'?' if other is None else f'{other:.2f}'} cores busy on average meanwhile\n"
    )
    print("| what | images/s | ratio | CPU ms/img | ceiling (cores / CPU) | goal |\n|---|---:|---:|---:|---:|---|")
    print(f"| `cv2.imdecode`, one thread | {decode:.0f} | 1.00× decode | {1e3 / decode:.2f} | | |")

    def row(what: str, rate: Rate, ratio: str, cores_used: int, goal: str = "") -> None:
        ceiling = rate.ceiling(cores_used)
        print(
            f"| {what} | {rate.images_per_s:.0f} | {ratio} | {rate.cost()} | {ceiling:.0f} on {cores_used} "
            f"({ceiling / decode:.2f}× decode) | {goal} |"
        )

    row("pipeline, 1 process, 0 workers", one0, f"{one0.images_per_s / decode:.2f}× decode", 1)
    row(
        f"pipeline, 1 process, {workers} workers",
        oneN,
        f"{oneN.images_per_s / decode:.2f}× decode",
        used,
        "≥ 1.0× decode",
    )
    row(
        "pipeline, 2 processes, 0 workers each",
        two0,
        f"{two0.images_per_s / one0.images_per_s:.2f}× 1 process, 0 workers; "
        f"{two0.images_per_s / best_one.images_per_s:.2f}× best 1-process",
        min(2, cores),
        "≥ 1.4× one",
    )
    for corruption, kind in CORRUPTIONS.items():
        s, f = stored[corruption], fly[corruption]
        which = _severities(corruption)
        row(f"{corruption} ({which}), stored, {workers} workers", s, "", used)
        goal = "≤ 1.5× for cheap corruptions" if kind == "cheap" else "bounded by the corruption"
        row(
            f"{corruption} ({which}), on the fly, {workers} workers",
            f,
            f"time per image {s.images_per_s / f.images_per_s:.2f}× stored's (CPU {f.total_ms / s.total_ms:.2f}×), "
            f"{oneN.images_per_s / f.images_per_s:.2f}× the clean pipeline's",
            used,
            goal,
        )
    if vit:
        ours, bare = vit
        print(
            f"| ViT-B/16 evaluation (random weights), CPU | {ours:.1f} | {100 * ours / bare:.0f} % of bare forward | "
            f"| | ≥ 85 % (GPU: bench/gpu_check.py) |"
        )
        print(f"| ViT-B/16 bare `encode_image` | {bare:.1f} | | | | |")

    print("\n### One image's CPU cost, one thread (ms)\n\n| step | ms/img |\n|---|---:|")
    for step, ms in costs.items():
        print(f"| {step} | {ms:.3f} |")
    main_share = costs["preprocess"] + costs["forward"]
    rest = oneN.total_ms - costs["read clean"] - main_share
    print(f"| the rest of the {workers}-worker pipeline (handover, loader, cells; its CPU − the above) | {rest:.3f} |")

    print("\n### What the costs say\n")
    ratio = oneN.images_per_s / decode
    print(
        f"- 1 process, {workers} workers: {ratio:.2f}× one core's decode (goal ≥ 1.0×: "
        f"{'met' if ratio >= 1.0 else 'not met'}). Per image it costs {oneN.total_ms:.2f} ms of CPU "
        f"(decode alone {1e3 / decode:.2f}), so {used} busy cores allow at most {oneN.ceiling(used):.0f} images/s = "
        f"{oneN.ceiling(used) / decode:.2f}× decode; the main process's own share is {oneN.main_ms:.2f} ms/img "
        f"(batched preprocessing {costs['preprocess']:.3f} + the model's forward {costs['forward']:.3f} on one thread)."
    )
    scaling, over_best = two0.images_per_s / one0.images_per_s, two0.images_per_s / best_one.images_per_s
    print(
        f"- 2 processes: {scaling:.2f}× one process with the same settings (0 workers; goal ≥ 1.4×: "
        f"{'met' if scaling >= 1.4 else 'not met'}), {over_best:.2f}× the best 1-process run. That run already keeps "
        f"{used} cores busy, so 2 processes can beat it only by costing less CPU per image: at "
        f"{two0.total_ms:.2f} ms/img against its {best_one.total_ms:.2f}, at most "
        f"{two0.ceiling(min(2, cores)) / best_one.images_per_s:.2f}× it on {min(2, cores)} cores."
    )
    for corruption, kind in CORRUPTIONS.items():
        s, f = stored[corruption], fly[corruption]
        rest = s.total_ms - costs[f"read {corruption}"]  # the stored pipeline's CPU besides reading
        floor = (costs[f"fly {corruption}"] + rest) / s.total_ms
        ratio = s.images_per_s / f.images_per_s  # on-the-fly time / stored time
        verdict = "" if kind != "cheap" else f" (goal ≤ 1.5×: {'met' if ratio <= 1.5 else 'not met'})"
        grouped = (
            f"its {_severities(corruption)} read as one group (each clean image decoded once): "
            f"{costs[f'fly {corruption} grouped']:.3f} ms per image and cell, decode included"
            if len(SEVERITIES[corruption]) > 1
            else f"{_severities(corruption)} alone: no group to share the decode"
        )
        print(
            f"- {corruption} on the fly: {ratio:.2f}× the time of stored{verdict}. One core reads and decodes a "
            f"stored image in {costs[f'read {corruption}']:.3f} ms, a clean one in {costs['read clean']:.3f} ms, and "
            f"corrupts it in {costs[f'fly {corruption}'] - costs['read clean']:.3f} ms (one cell alone; {grouped}): "
            f"with the pipeline's other {rest:.2f} ms/img, one cell alone costs on the fly ≥ {floor:.2f}× stored "
            "when the cores are busy."
        )


def _severities(corruption: str) -> str:
    """The timed severities of a corruption, in words."""
    chosen = SEVERITIES[corruption]
    return f"severity {chosen[0]}" if len(chosen) == 1 else f"severities {chosen[0]}–{chosen[-1]}, per image and cell"


if __name__ == "__main__":
    main()
