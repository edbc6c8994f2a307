"""Zero-shot robustness evaluation of models on a built benchmark, through ``accelerate``.

    hf-robustmed evaluate --models clip-vit-b16,biomedclip --benchmark DIR_OR_REPO -o results/
    accelerate launch -m hf_robustmed.evaluation --models … --benchmark … -o results/

Per (model, config, split) cell it stores the per-sample predictions and probabilities
(``cells/{model}/{config}/{split}.parquet``, written atomically): an interrupted run resumes and a finished cell
is never recomputed. Class text features are computed once per (model, dataset, templates). Results come in long
format (``results.parquet`` / ``.csv``: model, dataset, corruption, severity, metric, value, n) with a JSON summary.

``protocol`` selects the zero-shot protocol (:mod:`hf_robustmed.protocols`): ``standard`` (default) or ``rmc``, the
original code's behaviour with its defects. A results folder holds one protocol (``protocol.json``); results of
``rmc`` carry a ``protocol`` column, and every summary names its protocol.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from .._workers import forkable
from ..data.loader import batch_items, default_num_workers, make_loader, share
from ..data.manifest import MANIFEST, BenchmarkManifest, BuildSettings
from ..data.reader import CorruptedGroup, CorruptedRows, RowSource, ShardRows, SourceRows, iter_rows
from ..files import atomic_path
from ..hub import resolve_benchmark
from ..metrics import RESULT_COLUMNS, cell_metrics
from ..models.prompts import DEFAULT_TEMPLATES
from ..protocols import apply_protocol, get_protocol

CELL_METRICS = ("accuracy", "balanced_accuracy", "roc_auc")
PROTOCOL_FILE = "protocol.json"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One evaluation unit: a config's split of one dataset."""

    dataset: str
    config: str
    corruption: str
    severity: int
    split: str


class StoredBenchmark:
    """A built benchmark folder: its manifest, and the rows of each cell (stored, or made on the fly from the
    ``-clean`` configs with the build's engine settings).

    Args:
        folder: The benchmark folder.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest = BenchmarkManifest.read(self.folder)  # refuses an unfinished build
        self.digest = hashlib.sha256((self.folder / MANIFEST).read_bytes()).hexdigest()

    def __str__(self) -> str:
        return str(self.folder)

    def rows(self, cell: Cell, on_the_fly: bool, cache: dict) -> RowSource:
        """Where a cell's images come from: its stored config, or (on the fly) its dataset's clean config."""
        if not on_the_fly or cell.corruption == "clean":
            return ShardRows(self.folder, cell.config, cell.split)
        info, settings = self.manifest.datasets[cell.dataset], self.manifest.settings
        store_rgb = settings.grey == "rgb"
        if store_rgb and info.source_rgb is None:
            raise ValueError(
                f"{self.folder} was built before manifests recorded source channels: evaluate its stored "
                "configs, or rebuild it to corrupt on the fly"
            )
        key = (cell.dataset, cell.split)
        if key not in cache:
            cache[key] = ShardRows(self.folder, f"{cell.dataset}-clean", cell.split)
        return _corrupted(
            cache[key], cell, info.suite, settings.seed, store_rgb, grey_source=store_rgb and not info.source_rgb
        )


class SourceBenchmark:
    """Clean source splits evaluated as a benchmark whose corrupted configs are made on the fly: nothing is built
    or stored. The images are those :func:`~hf_robustmed.data.build_benchmark` would store for the same jobs,
    seed and grey handling.

    Args:
        jobs: Build jobs (e.g. :func:`~hf_robustmed.data.benchmarks.medmnist_c_jobs` of MedMNIST npz files,
            :func:`~hf_robustmed.data.benchmarks.medimeta_c_jobs` of MedIMeta folders, or jobs over
            :func:`~hf_robustmed.data.load_image_dataset`).
        name: Benchmark name for the summary.
        seed: Base seed of the corruptions' draws.
        grey: ``native`` or ``rgb``, as the builder's.
    """

    def __init__(self, jobs: Sequence, *, name: str = "benchmark", seed: int = 0, grey: str = "native"):
        from ..data.builder import SEEDING, dataset_infos, plan_configs, source_sha256

        self.sources = {(job.source.dataset, job.source.split): job for job in jobs}
        if not self.sources:
            raise ValueError("no source splits to evaluate")
        self.name, self.seed, self.grey = name, seed, grey
        plans, configs, digest = {}, {}, []
        for job in jobs:
            if job.suite is None:
                raise ValueError(f"{job.source.dataset}: a published release cannot be corrupted on the fly")
            plans[id(job)] = plan_configs(job)
            for plan in plans[id(job)]:
                configs.setdefault(plan.name, {})[job.source.split] = len(job.source)
            digest.append(
                [
                    job.source.dataset,
                    job.source.split,
                    job.suite,
                    [p.name for p in plans[id(job)]],
                    source_sha256(job.source),
                ]
            )
        self.manifest = BenchmarkManifest(  # what a build of the same jobs would record (nothing is stored: no shards)
            name=name,
            settings=BuildSettings(seed=seed, grey=grey, shard_rows=0, generator=f"hf-robustmed {__version__}"),
            seeding=SEEDING,
            datasets=dataset_infos(jobs, plans, grey),
            configs=configs,
        )
        record = {"seed": seed, "grey": grey, "sources": digest, "engine": f"hf-robustmed {__version__}"}
        self.digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()

    def __str__(self) -> str:
        return f"the sources of {self.name}"

    def rows(self, cell: Cell, on_the_fly: bool, cache: dict) -> RowSource:
        job = self.sources[(cell.dataset, cell.split)]
        clean = cache.setdefault((cell.dataset, cell.split), SourceRows(job.source))  # shared: read once per batch
        if cell.corruption == "clean":
            return clean
        return _corrupted(clean, cell, job.suite, self.seed, self.grey == "rgb", grey_source=False)


def _corrupted(clean: RowSource, cell: Cell, suite: str | None, seed: int, store_rgb: bool, *, grey_source: bool):
    if not suite:
        raise ValueError(
            f"{cell.config} was imported from a published release: it cannot be made on the fly; "
            "evaluate the stored configs (without on_the_fly)"
        )
    return CorruptedRows(
        clean,
        cell.dataset,
        cell.split,
        cell.corruption,
        cell.severity,
        suite,
        seed,
        grey_source=grey_source,
        store_rgb=store_rgb,
    )


def _as_benchmark(benchmark) -> StoredBenchmark | SourceBenchmark:
    return benchmark if isinstance(benchmark, (StoredBenchmark, SourceBenchmark)) else StoredBenchmark(benchmark)


def plan_cells(benchmark, datasets=None, corruptions=None, severities=None, split: str = "test") -> list[Cell]:
    """The cells to evaluate, from the benchmark's manifest (a folder, or a benchmark object), validated against
    what it holds."""
    benchmark = _as_benchmark(benchmark)
    manifest, folder = benchmark.manifest, benchmark
    known = manifest.datasets
    for name in datasets or ():
        if name not in known:
            raise ValueError(f"dataset {name!r} is not in {folder}; it has: {', '.join(known)}")
    for severity in severities or ():
        if severity not in (1, 2, 3, 4, 5):
            raise ValueError(f"severity must be in 1..5, got {severity}")
    available = {_parse_config(config)[1] for config in manifest.configs}
    for name in corruptions or ():
        if name not in available:
            raise ValueError(
                f"corruption {name!r} is not in {folder}; it has: {', '.join(sorted(available - {'clean'}))}"
            )
    multilabel = sorted(d for d, info in known.items() if info.multilabel and (not datasets or d in datasets))
    if multilabel:
        warnings.warn(
            f"skipping multi-label dataset(s) {', '.join(multilabel)}: zero-shot single-label "
            "classification does not apply",
            stacklevel=2,
        )
    cells = []
    for config, splits in manifest.configs.items():
        dataset, corruption, severity = _parse_config(config)
        if (datasets and dataset not in datasets) or split not in splits or dataset in multilabel:
            continue
        if corruption != "clean" and (
            (corruptions and corruption not in corruptions) or (severities and severity not in severities)
        ):
            continue
        cells.append(Cell(dataset, config, corruption, severity, split))
    if not cells:
        raise ValueError(f"no {split} configs in {folder} match the requested datasets/corruptions/severities")
    return cells


def _parse_config(config: str) -> tuple[str, str, int]:
    if config.endswith("-clean"):
        return config[: -len("-clean")], "clean", 0
    match = re.fullmatch(r"(.+)-([a-z0-9_]+)-([1-5])", config)
    if not match:
        raise ValueError(f"unexpected config name {config!r}")
    return match.group(1), match.group(2), int(match.group(3))


def iter_images(folder: Path, cell: Cell, batch_size: int) -> Iterator[tuple[list[np.ndarray], np.ndarray, np.ndarray]]:
    """Batches of (decoded images, labels, source indices) of a stored cell, in stored order."""
    return iter_rows(folder, cell.config, cell.split, batch_size)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def weights_digest(module) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes and bytes), in name order."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _fingerprint(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


class Evaluator:
    """Evaluates zero-shot models on a benchmark folder with ``accelerate`` (CPU, one or several GPUs).

    Each process reads and decodes only its own contiguous share of a cell, in ``num_workers`` data-loader
    workers; preprocessing runs batched on the model's device; the shares are gathered back in stored order, so
    results do not depend on the process or worker count. Every stored cell records what produced it (model spec
    and weights digest, templates, protocol, precision, the benchmark's manifest and how its images were made):
    a cell whose inputs changed is recomputed, never reused.

    Args:
        folder: Benchmark folder (built by ``hf-robustmed build`` or downloaded).
        out_dir: Where cells, results and the summary go.
        batch_size: Images per forward pass and process.
        templates: Prompt templates (``{c}`` class, ``{d}`` dataset).
        mixed_precision: ``no``, ``fp16`` or ``bf16``.
        protocol: ``standard`` or ``rmc`` (see :mod:`hf_robustmed.protocols`).
        num_workers: Data-loader workers per process (``None``: the cores available per process; 0: read in
            the main process).
        on_the_fly: Corrupt the ``-clean`` configs in the workers instead of reading the stored corrupted configs
            (same engine, suite, seed and per-sample keys as the build: the same images).

    Raises:
        ValueError: For an unknown protocol, templates the protocol does not allow, an unfinished benchmark, or an
            ``out_dir`` that holds results of another protocol.
    """

    def __init__(
        self,
        folder: Path,
        out_dir: Path,
        *,
        batch_size: int = 64,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        mixed_precision: str = "no",
        protocol: str = "standard",
        num_workers: int | None = None,
        on_the_fly: bool = False,
    ):
        from accelerate import Accelerator

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.protocol = get_protocol(protocol)
        self.benchmark = _as_benchmark(folder)
        self.out_dir, self.batch_size = Path(out_dir), batch_size
        self.templates = self.protocol.check_templates(templates)
        self.manifest, self.benchmark_digest = self.benchmark.manifest, self.benchmark.digest
        self.on_the_fly = on_the_fly or isinstance(self.benchmark, SourceBenchmark)
        self.accelerator = Accelerator(mixed_precision=mixed_precision)
        self.mixed_precision = mixed_precision
        self.num_workers = default_num_workers(self.accelerator.num_processes) if num_workers is None else num_workers
        self.families: dict[str, str | None] = {}  # model name → family, as loaded (recorded in the summary)
        self._claim_out_dir()

    def _claim_out_dir(self) -> None:
        """Records the protocol in ``out_dir``; refuses a folder of another protocol (cells would be mixed)."""
        marker = self.out_dir / PROTOCOL_FILE
        if marker.exists():
            found = json.loads(marker.read_text())["name"]
        else:  # folders written before protocols existed hold standard results
            found = "standard" if (self.out_dir / "cells").exists() else None
        if found is not None and found != self.protocol.name:
            raise ValueError(
                f"{self.out_dir} holds results of protocol {found!r}; write {self.protocol.name!r} "
                "results to another folder"
            )
        if not self.accelerator.is_main_process:
            return
        if not marker.exists():
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(marker) as tmp:
                tmp.write_text(json.dumps(self.protocol.record(), indent=1))
        for stale in (self.out_dir / "cells").glob("*/*/.*.tmp*"):  # left by a killed run; the cell is redone
            stale.unlink()

    def class_names(self, dataset: str) -> list[str]:
        """The class names of a dataset's prompts under the protocol (row *i* is scored against label *i*)."""
        return self.protocol.class_names_for(dataset, list(self.manifest.datasets[dataset].class_names))

    def cell_path(self, model: str, cell: Cell) -> Path:
        return self.out_dir / "cells" / _safe(model) / cell.config / f"{cell.split}.parquet"

    # -- what produced a cell ----------------------------------------------------------------------------------

    def model_inputs(self, name: str, model, spec: str | None = None) -> dict:
        """The model-side inputs of every cell of ``model``: spec (``None`` for a model given already created),
        weights digest and provenance, prompts, protocol, precision."""
        base = getattr(model, "base", model)  # a ProtocolModel wraps the ZeroShotModel
        return {
            "model": name,
            "spec": spec,
            "weights_sha256": weights_digest(base.module),
            "weights": (getattr(base, "provenance", None) or {}).get("weights", "unknown"),
            "templates": list(self.templates),
            "protocol": self.protocol.name,
            "mixed_precision": self.mixed_precision,
        }

    def cell_inputs(self, model_inputs: dict, cell: Cell) -> dict:
        """Everything a cell's numbers depend on: the model's inputs and where its images come from."""
        images = {"benchmark_sha256": self.benchmark_digest, "config": cell.config, "split": cell.split}
        if self.on_the_fly and cell.corruption != "clean":
            images["corrupted_by"] = f"hf-robustmed {__version__}"
        return {**model_inputs, "images": images}

    def stored_inputs(self, path: Path) -> dict | None:
        """The inputs recorded in a stored cell (``None`` if there is no cell, or one without a record)."""
        import pyarrow.parquet as pq

        if not path.exists():
            return None
        metadata = pq.read_schema(path).metadata or {}
        record = metadata.get(b"hf_robustmed.inputs")
        return json.loads(record) if record else None

    def _is_current(self, path: Path, inputs: dict) -> bool:
        stored = self.stored_inputs(path)
        if stored == inputs:
            return True
        if path.exists():
            changed = sorted(k for k in set(inputs) | set(stored or {}) if (stored or {}).get(k) != inputs.get(k))
            logger.info("recomputing %s: %s changed since it was stored", path, ", ".join(changed) or "its record")
        return False

    # -- running ------------------------------------------------------------------------------------------------

    def run(self, models: Sequence, cells: Sequence[Cell]):
        """Evaluates every (model, cell) not stored with the same inputs, then writes results; returns the
        long-format frame.

        Args:
            models: Registry names or specs, or already created ``ZeroShotModel`` objects.
            cells: From :func:`plan_cells`.
        """
        from ..models import MODEL_SPECS, ZeroShotModel, create_model

        names = [m.name if isinstance(m, ZeroShotModel) else m for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"models are given twice: {', '.join(names)}")
        for name, given in zip(names, models, strict=True):
            created = not isinstance(given, ZeroShotModel)
            model = create_model(name, device=str(self.accelerator.device)) if created else given
            model = apply_protocol(model, self.protocol)
            self.families[name] = model.family
            spec = (MODEL_SPECS[name].spec if name in MODEL_SPECS else name) if created else None
            inputs = self.model_inputs(name, model, spec)
            todo = [
                cell
                for cell in cells
                if not self._is_current(self.cell_path(name, cell), self.cell_inputs(inputs, cell))
            ]
            self.accelerator.wait_for_everyone()  # every process has checked before the main one rewrites
            if todo:
                self._evaluate(model, name, todo, inputs)
        return self.write_results(names, cells)

    def rows(self, cell: Cell, cache: dict | None = None) -> RowSource:
        """Where a cell's images come from (stored, or made on the fly)."""
        return self.benchmark.rows(cell, self.on_the_fly, {} if cache is None else cache)

    def _evaluate(self, model, name: str, todo: Sequence[Cell], inputs: dict) -> None:
        """Runs the model on its share of every cell's batches, finishing (gathering and writing) each cell as soon
        as its last batch is in.

        Consecutive cells corrupted on the fly from the same clean rows are read as one group
        (:func:`_group_cells`): each batch decodes its clean rows once, and one forward pass scores every
        member's images (about ``batch_size`` of them in all)."""
        import torch
        from tqdm.auto import tqdm

        from ..models.preprocess import reuse_outputs

        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        cache: dict = {}
        sources = [self.rows(cell, cache) for cell in todo]
        groups = _group_cells(sources, self.batch_size)
        readers = [sources[g[0]] if len(g) == 1 else CorruptedGroup([sources[k] for k in g]) for g in groups]
        items = [
            item
            for j, (group, rows) in enumerate(zip(groups, readers, strict=True))
            for item in batch_items(j, *share(len(rows), rank, world), max(1, self.batch_size // len(group)))
        ]
        device = self.accelerator.device
        loader = make_loader(readers, items, num_workers=self.num_workers, pin_memory=device.type == "cuda")
        classifiers = {
            d: model.classifier(self.class_names(d), d, self.templates) for d in dict.fromkeys(c.dataset for c in todo)
        }
        finish = lambda k, parts: self._finish(name, todo[k], len(sources[k]), parts, inputs, classifiers)  # noqa: E731
        pending: dict[int, list] = {k: [] for k in range(len(todo))}
        finished = 0  # the first cell not finished yet
        bar = tqdm(
            total=sum(len(rows) for rows in sources),
            desc=name,
            unit="img",
            disable=not self.accelerator.is_main_process,
        )
        with forkable(), reuse_outputs():  # each batch's pixels are done with before the next is preprocessed
            for batch in loader:
                group = groups[items[batch["item"]].source]
                for done in range(finished, group[0]):
                    finish(done, pending.pop(done))
                finished = group[0]
                pixels = model.preprocess_batch(_to_device(batch["images"], device))
                with self.accelerator.autocast(), torch.no_grad():
                    logits = model.logits(model.encode_images(pixels), classifiers[todo[group[0]].dataset])
                probs = torch.softmax(logits.float(), dim=-1).split(len(batch["labels"]))  # member-major
                for k, part in zip(group, probs, strict=True):
                    pending[k].append((part, batch["labels"], batch["indices"]))
                bar.update(len(batch["labels"]) * len(group) * world)
        for done in range(finished, len(todo)):
            finish(done, pending.pop(done))
        bar.close()

    def _finish(self, name: str, cell: Cell, n: int, parts: list, inputs: dict, classifiers: dict) -> None:
        """Gathers a cell's shares from every process (in rank order = stored order) and writes it."""
        import torch

        world = self.accelerator.num_processes
        classes = classifiers[cell.dataset].shape[0]
        device = self.accelerator.device
        probs = torch.cat([p for p, _, _ in parts]).to(device) if parts else torch.empty((0, classes), device=device)
        labels = (
            torch.cat([lab for _, lab, _ in parts]).to(device)
            if parts
            else torch.empty(0, dtype=torch.int64, device=device)
        )
        indices = (
            torch.cat([i for _, _, i in parts]).to(device)
            if parts
            else torch.empty(0, dtype=torch.int64, device=device)
        )
        sizes = [stop - start for start, stop in (share(n, r, world) for r in range(world))]
        if world > 1:
            probs, labels, indices = (_gather(self.accelerator, t, sizes) for t in (probs, labels, indices))
        if self.accelerator.is_main_process:
            self._write_cell(
                name,
                cell,
                labels.cpu().numpy(),
                indices.cpu().numpy(),
                probs.cpu().numpy(),
                self.cell_inputs(inputs, cell),
            )
        self.accelerator.wait_for_everyone()

    def _write_cell(self, name: str, cell: Cell, labels, indices, probs, inputs: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "index": indices.astype(np.int32),
                "label": labels.astype(np.int64),
                "pred": probs.argmax(axis=1).astype(np.int32),
                "probs": list(probs.astype(np.float32)),
            }
        ).replace_schema_metadata(
            {
                "hf_robustmed.protocol": self.protocol.name,
                "hf_robustmed.inputs": json.dumps(inputs, sort_keys=True),
                "hf_robustmed.fingerprint": _fingerprint(inputs),
            }
        )
        path = self.cell_path(name, cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    def write_results(self, models: Sequence[str], cells: Sequence[Cell]):
        """Long-format results from the stored cells (main process), as Parquet, CSV and a JSON summary."""
        import pandas as pd
        import pyarrow.parquet as pq

        rows, records = [], {}
        for name in models:
            for cell in cells:
                path = self.cell_path(name, cell)
                table = pq.read_table(path).to_pandas()
                records[name] = self.stored_inputs(path) or {}
                scores = cell_metrics(np.asarray(table["label"].tolist()), np.stack(table["probs"].to_numpy()))
                for metric in CELL_METRICS:
                    rows.append(
                        (name, cell.dataset, cell.corruption, cell.severity, metric, scores[metric], scores["n"])
                    )
        results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
        results["weights"] = results.model.map(lambda m: records[m].get("weights", "unknown"))
        if self.protocol.name != "standard":  # rmc numbers must never pass for standard ones
            results["protocol"] = self.protocol.name
        if self.accelerator.is_main_process:
            self._write_outputs(results, models, cells, records)
        return results

    def _write_outputs(self, results, models: Sequence[str], cells: Sequence[Cell], records: dict) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out_dir / "results.parquet") as tmp:
            results.to_parquet(tmp, index=False)
        with atomic_path(self.out_dir / "results.csv") as tmp:
            results.to_csv(tmp, index=False)
        accuracy = results[results.metric == "accuracy"]
        summary = {
            "benchmark": self.manifest.name,
            "benchmark_sha256": self.benchmark_digest,
            "processes": self.accelerator.num_processes,
            "pipeline": {
                "num_workers": self.num_workers,
                "on_the_fly": self.on_the_fly,
                "batch_size": self.batch_size,
                "mixed_precision": self.mixed_precision,
            },
            "templates": list(self.templates),
            "protocol": self._protocol_summary(models, cells),
            "models": {
                m: {
                    "clean_accuracy": float(g[g.corruption == "clean"].value.mean()),
                    "corrupted_accuracy": float(g[g.corruption != "clean"].value.mean()),
                    "spec": records[m].get("spec"),
                    "weights": records[m].get("weights"),
                    "weights_sha256": records[m].get("weights_sha256"),
                }
                for m, g in accuracy.groupby("model", sort=False)
            },
        }
        with atomic_path(self.out_dir / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=1))

    def _protocol_summary(self, models: Sequence[str], cells: Sequence[Cell]) -> dict:
        datasets = dict.fromkeys(cell.dataset for cell in cells)
        return {
            **self.protocol.record(),
            "model_families": {name: self.families.get(name) for name in models},
            "class_names": {
                d: {"prompts": self.class_names(d), "labels": list(self.manifest.datasets[d].class_names)}
                for d in datasets
            },
        }


def _group_cells(sources: Sequence[RowSource], batch_size: int) -> list[list[int]]:
    """The cells (indices into ``sources``) in reading groups, in order: consecutive cells corrupted on the fly from
    the same clean rows together, at most ``batch_size`` of them (a batch holds at least one row of each); every
    other cell alone."""
    groups: list[list[int]] = []
    for k, rows in enumerate(sources):
        first = sources[groups[-1][0]] if groups else None
        joins = isinstance(rows, CorruptedRows) and isinstance(first, CorruptedRows) and first.shares_clean(rows)
        if joins and len(groups[-1]) < batch_size:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


def _to_device(images, device):
    """A batch (tensor or list of tensors) on ``device``, asynchronously from pinned memory."""
    if isinstance(images, list):
        return [_to_device(image, device) for image in images]
    return images.to(device, non_blocking=images.device.type == "cpu" and images.is_pinned())


def _gather(accelerator, local, sizes: Sequence[int]):
    """Every process's rows, in rank order: each share padded to the largest so that ``gather`` works."""
    import torch

    size = max(sizes)
    pad = torch.zeros((size - len(local), *local.shape[1:]), dtype=local.dtype, device=local.device)
    gathered = accelerator.gather(torch.cat([local, pad]))
    return torch.cat([gathered[r * size : r * size + n] for r, n in enumerate(sizes)])


def evaluate(
    models: Sequence[str],
    benchmark: str,
    out_dir: str | Path,
    *,
    datasets=None,
    corruptions=None,
    severities=None,
    split: str = "test",
    batch_size: int = 64,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    mixed_precision: str = "no",
    protocol: str = "standard",
    num_workers: int | None = None,
    on_the_fly: bool = False,
):
    """Evaluates ``models`` on ``benchmark`` (a folder, a Hub repo, or a :class:`SourceBenchmark` of clean sources)
    under ``protocol``; returns long-format results.

    From the Hub, only the planned configs are downloaded (only their datasets' ``-clean`` configs with
    ``on_the_fly``). See :class:`Evaluator` for the arguments.
    """
    if isinstance(benchmark, SourceBenchmark):
        folder = benchmark
        cells = plan_cells(folder, datasets, corruptions, severities, split)
    else:
        folder = resolve_benchmark(benchmark, configs=[])
        cells = plan_cells(folder, datasets, corruptions, severities, split)
        needed = {f"{c.dataset}-clean" if on_the_fly else c.config for c in cells}
        if not Path(benchmark).expanduser().is_dir():
            folder = resolve_benchmark(benchmark, configs=sorted(needed))
    evaluator = Evaluator(
        folder,
        Path(out_dir),
        batch_size=batch_size,
        templates=templates,
        mixed_precision=mixed_precision,
        protocol=protocol,
        num_workers=num_workers,
        on_the_fly=on_the_fly,
    )
    return evaluator.run(list(models), cells)


def load_predictions(out_dir: str | Path):
    """Per-sample predictions of an evaluation folder: one row per (model, cell, image).

    Columns ``model, dataset, corruption, severity, split, index, label, pred, probs``: every metric can be
    recomputed from them (e.g. with the ``evaluate`` mCE module) without running a model again.
    """
    import pandas as pd

    out_dir = Path(out_dir)
    results = out_dir / "results.parquet"
    if not results.exists():
        raise ValueError(f"{out_dir} holds no finished evaluation (results.parquet is missing)")
    frames = []
    for model in pd.read_parquet(results, columns=["model"]).model.unique():
        for path in sorted((out_dir / "cells" / _safe(model)).glob("*/*.parquet")):
            dataset, corruption, severity = _parse_config(path.parent.name)
            frame = pd.read_parquet(path)
            frames.append(
                frame.assign(model=model, dataset=dataset, corruption=corruption, severity=severity, split=path.stem)
            )
    columns = ["model", "dataset", "corruption", "severity", "split", "index", "label", "pred", "probs"]
    return pd.concat(frames, ignore_index=True)[columns]
