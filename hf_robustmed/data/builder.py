"""Builds corruption benchmarks as Hub dataset repos: Parquet shards, one config per dataset/corruption/severity.

Layout (what ``push_to_hub(config_name=...)`` writes, and what the card's ``configs:`` lists)::

    out/README.md                                   dataset card (YAML configs + documentation)
    out/benchmark.json                              build manifest: fingerprint, settings, per-config counts
    out/{dataset}-clean/{split}-00000-of-00003.parquet
    out/{dataset}-{corruption}-{severity}/{split}-00000-of-00003.parquet

Shard ``i`` of every config holds source rows ``i·R … (i+1)·R``. Work is split by (source split, shard): the
main process reads the clean rows once and a worker writes that shard of every config, each file under a
temporary name renamed when complete. Random draws depend only on (seed, dataset, split, row), so the bytes do not
depend on worker count or resume point.

A build is identified by its *fingerprint*: a SHA-256 over its settings (seed, grey handling, shard size,
generator version) and, per source split, the configs built and a SHA-256 of the source's images, labels and
indices (content, not counts). Shards are written under ``out/.staging/`` (hidden: ``datasets`` finds no data
there) with the manifest of the build in progress; when every shard exists, the card is written, each config folder
is renamed into place and ``out/benchmark.json`` is written, marked complete. Until then nothing in ``out`` is
loadable. A rerun with the same fingerprint resumes (or, if complete, writes nothing); one with another
fingerprint is refused unless ``overwrite=True``, which first deletes the old build's configs, card and manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from .._workers import forkable, single_threaded_worker, worker_context
from ..corruptions import corrupt, get_suite
from ..files import atomic_path
from .card import render_card
from .manifest import CARD, MANIFEST, STAGING, BenchmarkManifest, BuildSettings, DatasetInfo
from .png import encode_png
from .source import SourceSplit

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
    """What a build produced: its fingerprint, configs with their splits and row counts, and how much work it did."""

    out_dir: Path
    fingerprint: str
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
                plans.append(
                    ConfigPlan(config_name(source.dataset, name, severity), source.dataset, name, severity, None)
                )
        return plans
    suite = get_suite(job.suite)
    names = job.corruptions or tuple(suite.corruptions)
    for name in names:
        if name not in suite.corruptions:
            raise ValueError(
                f"unknown corruption {name!r} for suite {suite.name!r}; valid: {', '.join(suite.corruptions)}"
            )
    for severity in job.severities:
        if severity not in (1, 2, 3, 4, 5):
            raise ValueError(f"severity must be in 1..5, got {severity}")
    for name in names:
        for severity in job.severities:
            plans.append(
                ConfigPlan(config_name(source.dataset, name, severity), source.dataset, name, severity, suite.name)
            )
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
                corrupt(
                    image,
                    plan.corruption,
                    plan.severity,
                    suite=plan.suite,
                    seed=task.seed,
                    key=(plan.dataset, task.split, int(index)),
                )
                for image, index in zip(task.images, task.indices, strict=True)
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
            pq.write_table(table, tmp, compression=_COMPRESSION)
        written += len(images)
    return written


# PNG bytes do not compress: stored as they are, a memory-mapped shard is read without copying (2-3x quicker
# reads in the evaluation's loader workers); the small columns keep Parquet's default snappy.
_COMPRESSION = {
    "image.bytes": "NONE",
    "image.path": "SNAPPY",
    "label": "SNAPPY",
    "label.list.element": "SNAPPY",
    "index": "SNAPPY",
    "corruption": "SNAPPY",
    "severity": "SNAPPY",
}


def source_sha256(source: SourceSplit, chunk_rows: int = 1000) -> str:
    """SHA-256 of a source split's content: images (and precomputed releases), labels and indices, read in chunks."""
    digest = hashlib.sha256()

    def add(what: str, rows) -> None:
        digest.update(f"{what} {tuple(rows.shape)}\n".encode())
        for start in range(0, len(rows), chunk_rows):
            digest.update(np.ascontiguousarray(rows[start : start + chunk_rows]).tobytes())

    add("images", source.images)
    for key in sorted(source.precomputed):
        add(f"precomputed {key[0]} {key[1]}", source.precomputed[key])
    add("labels", np.asarray(source.labels, np.int64))
    add("indices", np.asarray(source.indices, np.int64))
    return digest.hexdigest()


def _settings(
    jobs: Sequence[BuildJob], plans: dict[int, list[ConfigPlan]], seed: int, grey: str, shard_rows: int
) -> dict:
    """Everything the output bytes depend on: the build's settings and, per source split, its configs and content."""
    sources = [
        {
            "dataset": job.source.dataset,
            "split": job.source.split,
            "suite": job.suite,
            "configs": [plan.name for plan in plans[id(job)]],
            "rows": len(job.source),
            "image_shape": list(job.source.images.shape[1:]),
            "class_names": list(job.source.class_names),
            "multilabel": job.source.multilabel,
            "sha256": source_sha256(job.source, shard_rows),
        }
        for job in jobs
    ]
    return {
        "seed": seed,
        "grey": grey,
        "shard_rows": shard_rows,
        "generator": f"hf-robustmed {__version__}",
        "sources": sources,
    }


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def build_fingerprint(folder: str | Path) -> str:
    """The build fingerprint of a complete benchmark folder, read from its manifest.

    Two folders with the same fingerprint hold the same bytes: same sources (by content), configs and settings.

    Raises:
        ValueError: If the folder holds no complete build, or one made before builds were fingerprinted.
    """
    manifest = BenchmarkManifest.read(folder)
    if manifest.fingerprint is None:
        raise ValueError(
            f"{folder} was built by an older hf-robustmed without a build fingerprint; rebuild it (build … --overwrite)"
        )
    return manifest.fingerprint


def _read_manifest(path: Path) -> BenchmarkManifest | None:
    """A build's manifest (staged or published), if there is one."""
    if not path.is_file():
        return None
    try:
        return BenchmarkManifest.load(path)
    except ValueError as error:
        raise ValueError(f"{error}; or delete {path.parent} to build afresh") from None


def _differences(old: dict, new: dict) -> list[str]:
    """What differs between two builds' settings, in words (``seed``, ``bloodmnist/test: sha256`` …)."""
    changed = [key for key in sorted((set(old) | set(new)) - {"sources"}) if old.get(key) != new.get(key)]
    old_sources = {(s["dataset"], s["split"]): s for s in old.get("sources", [])}
    new_sources = {(s["dataset"], s["split"]): s for s in new["sources"]}
    for key in sorted(set(old_sources) | set(new_sources)):
        before, after = old_sources.get(key), new_sources.get(key)
        if before is None or after is None:
            changed.append(f"{'/'.join(key)} {'added' if before is None else 'not built now'}")
        elif before != after:
            fields = [name for name in after if before.get(name) != after[name]]
            changed.append(f"{'/'.join(key)}: {', '.join('source content' if f == 'sha256' else f for f in fields)}")
    return changed


def _claim(out_dir: Path, fingerprint: str, settings: dict, overwrite: bool) -> None:
    """Makes ``out_dir`` ready for this build: refuses, or with ``overwrite`` deletes, any other build in it."""
    manifests = [m for m in (_read_manifest(out_dir / STAGING / MANIFEST), _read_manifest(out_dir / MANIFEST)) if m]
    if not manifests:
        leftovers = sorted(p.relative_to(out_dir) for p in [*out_dir.glob("*/*.parquet"), out_dir / CARD] if p.exists())
        if leftovers:
            raise ValueError(
                f"{out_dir} holds {leftovers[0]} but no {MANIFEST}: it is not a folder of an "
                "hf-robustmed build; build into a new or empty folder"
            )
        return
    others = [m for m in manifests if m.fingerprint != fingerprint]
    if not others:
        return
    if not overwrite:
        changed = _differences(others[0].settings.to_dict(), settings) or ["its fingerprint"]
        raise ValueError(
            f"{out_dir} holds another build (differences: {'; '.join(changed)}); its shards would be mixed with this "
            "one's. Build into a new folder, or pass overwrite=True (CLI: --overwrite) to delete that build and start "
            "afresh"
        )
    _remove_build(out_dir, manifests)


def _remove_build(out_dir: Path, manifests: list[BenchmarkManifest]) -> None:
    """Deletes a build: its config folders first (without them the card loads nothing), then card and manifests."""
    for config in sorted({name for manifest in manifests for name in manifest.configs}):
        if not config or config.startswith(".") or "/" in config or "\\" in config:
            raise ValueError(f"{out_dir}/{MANIFEST} names a config {config!r} that is not a folder name; not deleting")
        _remove_tree(out_dir / config)
    (out_dir / CARD).unlink(missing_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    _remove_tree(out_dir / STAGING)


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


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
    overwrite: bool = False,
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
        overwrite: Delete a different build found in ``out_dir`` (other sources, content or settings) instead of
            refusing to touch it.

    Raises:
        ValueError: On bad settings, or if ``out_dir`` holds another build and ``overwrite`` is false.
    """
    if grey not in GREY_MODES:
        raise ValueError(f"grey must be one of {GREY_MODES}, got {grey!r}")
    if shard_rows < 1:
        raise ValueError(f"shard_rows must be positive, got {shard_rows}")
    if not jobs:
        raise ValueError("nothing to build: no jobs")
    splits = [(job.source.dataset, job.source.split) for job in jobs]
    if len(set(splits)) != len(splits):
        raise ValueError(f"a source split is listed twice: {sorted(s for s in splits if splits.count(s) > 1)[0]}")
    out_dir = Path(out_dir)
    plans = {id(job): plan_configs(job) for job in jobs}
    settings = _settings(jobs, plans, seed, grey, shard_rows)
    report = BuildReport(out_dir, _fingerprint(settings))
    for job in jobs:
        for plan in plans[id(job)]:
            report.configs.setdefault(plan.name, {})[job.source.split] = len(job.source)
    manifest = _manifest(name, settings, report, jobs, plans)
    out_dir.mkdir(parents=True, exist_ok=True)
    _claim(out_dir, report.fingerprint, settings, overwrite)
    staging = out_dir / STAGING
    if not _is_complete(out_dir, report.fingerprint):
        staging.mkdir(exist_ok=True)
        manifest.write(staging / MANIFEST)
        for stale in staging.glob("*/.*.tmp*"):  # left by a killed build; the shard itself is redone
            stale.unlink()
    pending = _pending(jobs, plans, out_dir, shard_rows, report)
    total = sum(len(job.source) * len(plans[id(job)]) for job in jobs)
    bar = tqdm(total=total, desc=f"building {name}", unit="img", disable=not progress)
    bar.update(total - sum(stop - start for _, start, stop, _, missing in pending for _ in missing))
    for written in _run(_tasks(pending, staging, seed, grey, shard_rows), num_workers):
        report.images_written += written
        bar.update(written)
    bar.close()
    _publish(out_dir, manifest)
    return report


def _run(tasks, num_workers: int):
    """Writes the shard tasks in this process or in ``num_workers`` workers; yields each one's image count."""
    if num_workers <= 0:
        yield from map(_write_shard, tasks)
        return
    # forked workers (any script, no __main__ guard); OpenCV's pool stays stopped here while the build runs
    with (
        forkable(),
        ProcessPoolExecutor(num_workers, mp_context=worker_context(), initializer=single_threaded_worker) as pool,
    ):
        pending: list[Future] = []
        for task in tasks:
            pending.append(pool.submit(_write_shard, task))
            while len(pending) >= 2 * num_workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def _is_complete(out_dir: Path, fingerprint: str) -> bool:
    published = _read_manifest(out_dir / MANIFEST)
    return bool(published and published.complete and published.fingerprint == fingerprint)


def _shard_done(out_dir: Path, config: str, split: str, shard: int, shards: int) -> bool:
    """Whether a shard exists: staged, or already renamed into place (a build killed while publishing)."""
    return (
        shard_path(out_dir / STAGING, config, split, shard, shards).exists()
        or shard_path(out_dir, config, split, shard, shards).exists()
    )


def _pending(jobs, plans, out_dir: Path, shard_rows: int, report: BuildReport) -> list:
    """Per (source split, shard) still incomplete: ``(job, start, stop, shards, missing configs)``; counts the work."""
    pending = []
    for job in jobs:
        n = len(job.source)
        shards = max(1, -(-n // shard_rows))
        for shard in range(shards):
            missing = [p for p in plans[id(job)] if not _shard_done(out_dir, p.name, job.source.split, shard, shards)]
            report.shards_skipped += len(plans[id(job)]) - len(missing)
            report.shards_written += len(missing)
            if missing:
                pending.append((job, shard * shard_rows, min(n, (shard + 1) * shard_rows), shards, missing))
    return pending


def _tasks(pending, staging: Path, seed: int, grey: str, shard_rows: int):
    """Shard tasks of the pending work, reading each source chunk once."""
    for job, start, stop, shards, missing in pending:
        source = job.source
        schema = _features(source).arrow_schema
        images = np.asarray(source.images[start:stop])
        labels, indices = source.label_rows(start, stop), np.asarray(source.indices[start:stop])
        # One task per corruption (its severities together): small enough to balance two workers even on a
        # single chunk; each carries the chunk's clean images (shard_rows × 150 kB at 224 px, RGB).
        groups: dict[str, list[ConfigPlan]] = {}
        for plan in missing:
            groups.setdefault(plan.corruption, []).append(plan)
        for group in groups.values():
            configs = [
                (
                    p,
                    np.asarray(source.precomputed[(p.corruption, p.severity)][start:stop])
                    if source.precomputed and p.corruption != "clean"
                    else None,
                )
                for p in group
            ]
            yield _ShardTask(
                staging, source.split, start // shard_rows, shards, schema, images, labels, indices, configs, seed, grey
            )


SEEDING = "per sample: numpy SeedSequence([seed, corruption, severity, (dataset, split, row)])"


def _manifest(name: str, settings: dict, report: BuildReport, jobs, plans) -> BenchmarkManifest:
    """The build's manifest, not yet complete."""
    return BenchmarkManifest(
        name=name,
        complete=False,
        fingerprint=report.fingerprint,
        settings=BuildSettings.from_dict(settings),
        seeding=SEEDING,
        datasets=dataset_infos(jobs, {id(job): plans[id(job)] for job in jobs}, settings["grey"]),
        configs=report.configs,
    )


def dataset_infos(jobs: Sequence[BuildJob], plans: dict[int, list[ConfigPlan]], grey: str) -> dict[str, DatasetInfo]:
    """The manifest's description of each dataset the jobs build: a dataset's first job describes it, each job
    adds its split.

    Args:
        jobs: The build jobs.
        plans: Per job (by ``id``), its planned configs (:func:`plan_configs`).
        grey: ``native`` or ``rgb`` (grey images stored replicated to RGB).
    """
    infos: dict[str, DatasetInfo] = {}
    for job in jobs:
        source, corruptions = job.source, [p.corruption for p in plans[id(job)]]
        info = infos.get(source.dataset) or DatasetInfo(
            class_names=tuple(source.class_names),
            multilabel=source.multilabel,
            license=source.license,
            citation=source.citation,
            homepage=source.homepage,
            description=source.description,
            suite=job.suite,
            rgb=source.rgb or grey == "rgb",
            source_rgb=source.rgb,
            splits={},
            corruptions=tuple(sorted({c for c in corruptions if c != "clean"}, key=corruptions.index)),
        )
        info.splits[source.split] = len(source)
        infos[source.dataset] = info
    return infos


def _publish(out_dir: Path, manifest: BenchmarkManifest) -> None:
    """Makes a finished build loadable: the card (declaring every config), each config folder renamed into place
    from the staging area, then the manifest marked complete. A kill in between leaves a build a rerun completes."""
    with atomic_path(out_dir / CARD) as tmp:
        tmp.write_text(render_card(manifest))
    staging = out_dir / STAGING
    for config in manifest.configs:
        staged = staging / config
        if staged.is_dir():
            _remove_tree(out_dir / config)
            staged.rename(out_dir / config)
    manifest.completed().write(out_dir / MANIFEST)
    _remove_tree(staging)
