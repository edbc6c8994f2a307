"""Builds corruption benchmarks as Hub dataset repos: Parquet shards, one config per dataset/corruption/severity.

Layout (what ``push_to_hub(config_name=...)`` writes, and what the card's ``configs:`` lists)::

    out/README.md                                   dataset card (YAML configs + documentation)
    out/benchmark.json                              build manifest: version, seed, suites, per-config counts
    out/{dataset}-clean/{split}-00000-of-00003.parquet
    out/{dataset}-{corruption}-{severity}/{split}-00000-of-00003.parquet

Shard ``i`` of every config holds source rows ``i·R … (i+1)·R``. Work is split by (source split, shard): the
main process reads the clean rows once and a worker writes that shard of every config, each file under a
temporary name renamed when complete. A killed build rerun skips the shards that exist; random draws depend
only on (seed, dataset, split, row), so the bytes do not depend on worker count or resume point.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..corruptions import corrupt, get_suite
from ..files import atomic_path
from .png import encode_png
from .source import SourceSplit

MANIFEST = "benchmark.json"
GREY_MODES = ("native", "rgb")


@dataclass(frozen=True)
class BuildJob:
    """A source split and the corruptions to apply to it.

    Attributes:
        source: The clean split (with ``precomputed`` images for importers).
        suite: Parameter suite of the engine (``medmnist-c/bloodmnist``, ``medimeta-c`` …); ``None`` for
            precomputed releases.
        corruptions: Names to build (default: all of the suite's, or all precomputed ones).
        severities: Severities to build.
    """

    source: SourceSplit
    suite: str | None
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class ConfigPlan:
    """One config of the benchmark: ``{dataset}-clean`` or ``{dataset}-{corruption}-{severity}``."""

    name: str
    dataset: str
    corruption: str
    severity: int
    suite: str | None


@dataclass
class BuildReport:
    """What a build produced: configs with their splits and row counts, and how much work it did."""

    out_dir: Path
    configs: dict[str, dict[str, int]] = field(default_factory=dict)
    shards_written: int = 0
    shards_skipped: int = 0
    images_written: int = 0


def config_name(dataset: str, corruption: str, severity: int) -> str:
    return f"{dataset}-clean" if corruption == "clean" else f"{dataset}-{corruption}-{severity}"


def plan_configs(job: BuildJob) -> list[ConfigPlan]:
    """The configs a job builds, clean first, then corruptions in suite order and severities ascending."""
    source = job.source
    plans = [ConfigPlan(config_name(source.dataset, "clean", 0), source.dataset, "clean", 0, None)]
    if source.precomputed:
        available = sorted(source.precomputed)
        names = job.corruptions or tuple(dict.fromkeys(name for name, _ in available))
        for name in names:
            for severity in job.severities:
                if (name, severity) not in source.precomputed:
                    raise ValueError(f"{source.dataset}/{source.split}: the release has no {name} severity {severity}")
                plans.append(ConfigPlan(config_name(source.dataset, name, severity), source.dataset, name, severity, None))
        return plans
    suite = get_suite(job.suite)
    names = job.corruptions or tuple(suite.corruptions)
    for name in names:
        if name not in suite.corruptions:
            raise ValueError(f"unknown corruption {name!r} for suite {suite.name!r}; valid: {', '.join(suite.corruptions)}")
    for severity in job.severities:
        if severity not in (1, 2, 3, 4, 5):
            raise ValueError(f"severity must be in 1..5, got {severity}")
    for name in names:
        for severity in job.severities:
            plans.append(ConfigPlan(config_name(source.dataset, name, severity), source.dataset, name, severity, suite.name))
    return plans


def _features(source: SourceSplit):
    import datasets

    label = datasets.ClassLabel(names=list(source.class_names))
    return datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.Sequence(label) if source.multilabel else label,
            "index": datasets.Value("int32"),
            "corruption": datasets.Value("string"),
            "severity": datasets.Value("int8"),
        }
    )


def shard_path(out_dir: Path, config: str, split: str, shard: int, shards: int) -> Path:
    return out_dir / config / f"{split}-{shard:05d}-of-{shards:05d}.parquet"


@dataclass
class _ShardTask:
    out_dir: Path
    split: str
    shard: int
    shards: int
    schema: object  # pyarrow.Schema with the datasets features in its metadata (workers need not import datasets)
    images: np.ndarray
    labels: list
    indices: np.ndarray
    configs: list[tuple[ConfigPlan, np.ndarray | None]]
    seed: int
    grey: str


def _write_shard(task: _ShardTask) -> int:
    """Writes shard ``task.shard`` of each config; returns the number of images written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = 0
    for plan, precomputed in task.configs:
        path = shard_path(task.out_dir, plan.name, task.split, task.shard, task.shards)
        if path.exists():
            continue
        if precomputed is not None:
            images = list(precomputed)
        elif plan.corruption == "clean":
            images = list(task.images)
        else:
            images = [
                corrupt(image, plan.corruption, plan.severity, suite=plan.suite, seed=task.seed,
                        key=(plan.dataset, task.split, int(index)))
                for image, index in zip(task.images, task.indices)
            ]
        if task.grey == "rgb":
            images = [np.repeat(im[..., None], 3, 2) if im.ndim == 2 else im for im in images]
        table = pa.Table.from_pydict(
            {
                "image": [{"bytes": encode_png(im), "path": None} for im in images],
                "label": task.labels,
                "index": task.indices.astype(np.int32),
                "corruption": [plan.corruption] * len(images),
                "severity": np.full(len(images), plan.severity, np.int8),
            },
            schema=task.schema,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        written += len(images)
    return written


def _worker_context():
    """Workers fork from a fresh server process that has imported the builder once (safe with threads in the
    caller, unlike ``fork``; much quicker to start than ``spawn``). ``spawn`` where there is no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _check_manifest(out_dir: Path, settings: dict) -> None:
    """Refuses to resume a folder built with other settings (their shards would be mixed with ours)."""
    path = out_dir / MANIFEST
    if not path.exists():
        return
    previous = json.loads(path.read_text()).get("settings", {})
    if previous and previous != settings:
        changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
        raise ValueError(
            f"{out_dir} holds a build with other settings ({', '.join(changed)} differ); use a new folder"
        )


def build_benchmark(
    jobs: Sequence[BuildJob],
    out_dir: str | Path,
    *,
    name: str = "benchmark",
    seed: int = 0,
    grey: str = "native",
    num_workers: int = 0,
    shard_rows: int = 1000,
    progress: bool = True,
    card: bool = True,
) -> BuildReport:
    """Builds (or resumes building) a benchmark folder in Hub dataset-repo layout.

    Args:
        jobs: Source splits with their suites; several splits of one dataset share its configs.
        out_dir: Output folder (created).
        name: Benchmark name for the card and manifest (``MedMNIST-C``, ``MediMeta-C`` …).
        seed: Base seed of the corruptions' random draws.
        grey: ``native`` keeps grey images one-channel (MedMNIST-C); ``rgb`` stores every image as RGB, grey ones
            replicated before corrupting (MediMeta-C's adopted handling).
        num_workers: Worker processes (0: this process). The output bytes do not depend on it.
        shard_rows: Images per Parquet shard; bounds memory (about ``2 × workers`` shards in flight).
        progress: Show a progress bar.
        card: Write ``README.md`` (the dataset card) at the end.
    """
    if grey not in GREY_MODES:
        raise ValueError(f"grey must be one of {GREY_MODES}, got {grey!r}")
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be positive, got {shard_rows}")
    out_dir = Path(out_dir)
    plans = {id(job): plan_configs(job) for job in jobs}
    settings = {"seed": seed, "grey": grey, "shard_rows": shard_rows, "generator": f"hf-robustmed {__version__}"}
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_manifest(out_dir, settings)
    for stale in out_dir.glob("*/.*.tmp*"):  # left by a killed build; the shard itself is redone
        stale.unlink()
    report = BuildReport(out_dir)
    for job in jobs:
        for plan in plans[id(job)]:
            report.configs.setdefault(plan.name, {})[job.source.split] = len(job.source)
    _write_manifest(out_dir, name, settings, jobs, plans, report, complete=False)

    tasks = _tasks(jobs, plans, out_dir, seed, grey, shard_rows, report)
    total = sum(len(job.source) * len(plans[id(job)]) for job in jobs)
    bar = tqdm(total=total, desc=f"building {name}", unit="img", disable=not progress)
    bar.update(report.shards_skipped and _skipped_images(jobs, plans, out_dir, shard_rows))
    if num_workers <= 0:
        for task in tasks:
            written = _write_shard(task)
            report.images_written += written
            bar.update(written)
    else:
        with ProcessPoolExecutor(num_workers, mp_context=_worker_context(), initializer=_init_worker) as pool:
            pending: list[Future] = []
            for task in tasks:
                pending.append(pool.submit(_write_shard, task))
                while len(pending) >= 2 * num_workers:
                    written = pending.pop(0).result()
                    report.images_written += written
                    bar.update(written)
            for future in pending:
                written = future.result()
                report.images_written += written
                bar.update(written)
    bar.close()
    _write_manifest(out_dir, name, settings, jobs, plans, report, complete=True)
    if card:
        from .card import write_card

        write_card(out_dir)
    return report


def _skipped_images(jobs, plans, out_dir: Path, shard_rows: int) -> int:
    """Images in shards that already exist (a resumed build), for the progress bar."""
    skipped = 0
    for job in jobs:
        n = len(job.source)
        shards = max(1, -(-n // shard_rows))
        for shard in range(shards):
            rows = min(n, (shard + 1) * shard_rows) - shard * shard_rows
            skipped += rows * sum(shard_path(out_dir, p.name, job.source.split, shard, shards).exists() for p in plans[id(job)])
    return skipped


def _tasks(jobs, plans, out_dir, seed, grey, shard_rows, report):
    """Shard tasks still to do, reading each source chunk only if one of its shards is missing."""
    for job in jobs:
        source = job.source
        n = len(source)
        shards = max(1, -(-n // shard_rows))
        features = _features(source).arrow_schema
        for shard in range(shards):
            start, stop = shard * shard_rows, min(n, (shard + 1) * shard_rows)
            missing = [p for p in plans[id(job)] if not shard_path(out_dir, p.name, source.split, shard, shards).exists()]
            report.shards_skipped += len(plans[id(job)]) - len(missing)
            report.shards_written += len(missing)
            if not missing:
                continue
            images = np.asarray(source.images[start:stop])
            labels, indices = source.label_rows(start, stop), np.asarray(source.indices[start:stop])
            # One task per corruption (its severities together): small enough to balance two workers even on a
            # single chunk; each carries the chunk's clean images (shard_rows × 150 kB at 224 px, RGB).
            groups: dict[str, list[ConfigPlan]] = {}
            for plan in missing:
                groups.setdefault(plan.corruption, []).append(plan)
            for group in groups.values():
                configs = [
                    (p, np.asarray(source.precomputed[(p.corruption, p.severity)][start:stop])
                     if source.precomputed and p.corruption != "clean" else None)
                    for p in group
                ]
                yield _ShardTask(out_dir, source.split, shard, shards, features, images, labels, indices, configs, seed, grey)


def _write_manifest(out_dir, name, settings, jobs, plans, report, *, complete: bool) -> None:
    datasets_info = {}
    for job in jobs:
        source = job.source
        entry = datasets_info.setdefault(source.dataset, {
            "class_names": list(source.class_names), "multilabel": source.multilabel, "license": source.license,
            "citation": source.citation, "homepage": source.homepage, "description": source.description,
            "suite": job.suite, "rgb": source.rgb or settings["grey"] == "rgb", "splits": {},
            "corruptions": sorted({p.corruption for p in plans[id(job)] if p.corruption != "clean"},
                                  key=[p.corruption for p in plans[id(job)]].index),
        })
        entry["splits"][source.split] = len(source)
    manifest = {
        "name": name,
        "complete": complete,
        "settings": settings,
        "seeding": "per sample: numpy SeedSequence([seed, corruption, severity, (dataset, split, row)])",
        "datasets": datasets_info,
        "configs": report.configs,
    }
    with atomic_path(out_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))

