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

import argparse
import json
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.reader import iter_rows
from .files import atomic_path
from .metrics import RESULT_COLUMNS, cell_metrics
from .models.prompts import DEFAULT_TEMPLATES
from .protocols import apply_protocol, family_of, get_protocol

CELL_METRICS = ("accuracy", "balanced_accuracy", "roc_auc")
PROTOCOL_FILE = "protocol.json"


@dataclass(frozen=True)
class Cell:
    """One evaluation unit: a config's split of one dataset."""

    dataset: str
    config: str
    corruption: str
    severity: int
    split: str


def resolve_benchmark(benchmark: str, configs: Sequence[str] | None = None) -> Path:
    """A local benchmark folder, or a Hub dataset repo downloaded (only the configs needed) into the cache."""
    path = Path(benchmark)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    patterns = ["README.md", "benchmark.json"] + [f"{c}/*" for c in configs or ["*"]]
    return Path(snapshot_download(benchmark, repo_type="dataset", allow_patterns=patterns))


def plan_cells(folder: Path, datasets=None, corruptions=None, severities=None, split: str = "test") -> list[Cell]:
    """The cells to evaluate, from the benchmark's manifest, validated against what it holds."""
    manifest = json.loads((folder / "benchmark.json").read_text())
    known = manifest["datasets"]
    for name in datasets or ():
        if name not in known:
            raise ValueError(f"dataset {name!r} is not in {folder}; it has: {', '.join(known)}")
    for severity in severities or ():
        if severity not in (1, 2, 3, 4, 5):
            raise ValueError(f"severity must be in 1..5, got {severity}")
    available = {_parse_config(config)[1] for config in manifest["configs"]}
    for name in corruptions or ():
        if name not in available:
            raise ValueError(f"corruption {name!r} is not in {folder}; it has: {', '.join(sorted(available - {'clean'}))}")
    multilabel = sorted(d for d, info in known.items() if info["multilabel"] and (not datasets or d in datasets))
    if multilabel:
        warnings.warn(f"skipping multi-label dataset(s) {', '.join(multilabel)}: zero-shot single-label "
                      "classification does not apply", stacklevel=2)
    cells = []
    for config, splits in manifest["configs"].items():
        dataset, corruption, severity = _parse_config(config)
        if (datasets and dataset not in datasets) or split not in splits or dataset in multilabel:
            continue
        if corruption != "clean" and ((corruptions and corruption not in corruptions) or (severities and severity not in severities)):
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
    """Batches of (decoded images, labels, source indices) of a cell, in stored order."""
    return iter_rows(folder, cell.config, cell.split, batch_size)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


class Evaluator:
    """Evaluates zero-shot models on a benchmark folder with ``accelerate`` (CPU, one or several GPUs).

    Args:
        folder: Benchmark folder (built by ``hf-robustmed build`` or downloaded).
        out_dir: Where cells, results and the summary go.
        batch_size: Images per forward pass and process.
        templates: Prompt templates (``{c}`` class, ``{d}`` dataset).
        mixed_precision: ``no``, ``fp16`` or ``bf16``.
        protocol: ``standard`` or ``rmc`` (see :mod:`hf_robustmed.protocols`).

    Raises:
        ValueError: For an unknown protocol, templates the protocol does not allow, or an ``out_dir`` that holds
            results of another protocol.
    """

    def __init__(self, folder: Path, out_dir: Path, *, batch_size: int = 64,
                 templates: Sequence[str] = DEFAULT_TEMPLATES, mixed_precision: str = "no", protocol: str = "standard"):
        from accelerate import Accelerator

        self.protocol = get_protocol(protocol)
        self.folder, self.out_dir, self.batch_size = folder, out_dir, batch_size
        self.templates = self.protocol.check_templates(templates)
        self.accelerator = Accelerator(mixed_precision=mixed_precision)
        self.manifest = json.loads((folder / "benchmark.json").read_text())
        self._claim_out_dir()

    def _claim_out_dir(self) -> None:
        """Records the protocol in ``out_dir``; refuses a folder of another protocol (cells would be mixed)."""
        marker = self.out_dir / PROTOCOL_FILE
        if marker.exists():
            found = json.loads(marker.read_text())["name"]
        else:  # folders written before protocols existed hold standard results
            found = "standard" if (self.out_dir / "cells").exists() else None
        if found is not None and found != self.protocol.name:
            raise ValueError(f"{self.out_dir} holds results of protocol {found!r}; write {self.protocol.name!r} "
                             "results to another folder")
        if not marker.exists() and self.accelerator.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(marker) as tmp:
                tmp.write_text(json.dumps(self.protocol.record(), indent=1))

    def class_names(self, dataset: str) -> list[str]:
        """The class names of a dataset's prompts under the protocol (row *i* is scored against label *i*)."""
        return self.protocol.class_names_for(dataset, self.manifest["datasets"][dataset]["class_names"])

    def cell_path(self, model: str, cell: Cell) -> Path:
        return self.out_dir / "cells" / _safe(model) / cell.config / f"{cell.split}.parquet"

    def run(self, models: Sequence, cells: Sequence[Cell]):
        """Evaluates every (model, cell) not yet stored, then writes results; returns the long-format frame.

        Args:
            models: Registry names or specs, or already created ``ZeroShotModel`` objects.
            cells: From :func:`plan_cells`.
        """
        from tqdm.auto import tqdm

        from .models import ZeroShotModel, create_model

        names = [m.name if isinstance(m, ZeroShotModel) else m for m in models]
        for name, given in zip(names, models):
            todo = [cell for cell in cells if not self.cell_path(name, cell).exists()]
            if not todo:
                continue
            model = given if isinstance(given, ZeroShotModel) else create_model(name, device=str(self.accelerator.device))
            model = apply_protocol(model, self.protocol, family_of(name))
            classifiers = {}
            for cell in tqdm(todo, desc=name, disable=not self.accelerator.is_main_process):
                if cell.dataset not in classifiers:  # once per (model, dataset, templates)
                    classifiers[cell.dataset] = model.classifier(self.class_names(cell.dataset), cell.dataset,
                                                                 self.templates)
                self._evaluate_cell(model, classifiers[cell.dataset], name, cell)
        return self.write_results(names, cells)

    def _evaluate_cell(self, model, classifier, name: str, cell: Cell) -> None:
        import torch

        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        labels, indices, probs = [], [], []
        for step, (images, batch_labels, batch_indices) in enumerate(iter_images(self.folder, cell, self.batch_size)):
            mine = slice(rank, None, world)  # an interleaved share of each batch per process
            pixels = model.preprocess_arrays(images[mine]).to(self.accelerator.device) if images[mine] else None
            if pixels is not None:
                with self.accelerator.autocast():
                    logits = model.logits(model.encode_images(pixels), classifier)
                local = torch.softmax(logits.float(), dim=-1).cpu()
            else:
                local = torch.empty((0, classifier.shape[0]))
            gathered = self.accelerator.gather(_pad(local, len(images), world)).cpu()
            probs.append(_unpad(gathered, len(images), world))
            labels.append(batch_labels)
            indices.append(batch_indices)
        if self.accelerator.is_main_process:
            self._write_cell(name, cell, np.concatenate(labels), np.concatenate(indices), np.concatenate(probs))
        self.accelerator.wait_for_everyone()

    def _write_cell(self, name: str, cell: Cell, labels, indices, probs) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({
            "index": indices.astype(np.int32),
            "label": labels.astype(np.int64),
            "pred": probs.argmax(axis=1).astype(np.int32),
            "probs": list(probs.astype(np.float32)),
        }).replace_schema_metadata({"hf_robustmed.protocol": self.protocol.name})
        path = self.cell_path(name, cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    def write_results(self, models: Sequence[str], cells: Sequence[Cell]):
        """Long-format results from the stored cells (main process), as Parquet, CSV and a JSON summary."""
        import pandas as pd
        import pyarrow.parquet as pq

        rows = []
        for name in models:
            for cell in cells:
                table = pq.read_table(self.cell_path(name, cell)).to_pandas()
                scores = cell_metrics(np.asarray(table["label"].tolist()), np.stack(table["probs"].to_numpy()))
                for metric in CELL_METRICS:
                    rows.append((name, cell.dataset, cell.corruption, cell.severity, metric, scores[metric], scores["n"]))
        results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
        if self.protocol.name != "standard":  # rmc numbers must never pass for standard ones
            results["protocol"] = self.protocol.name
        if self.accelerator.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.out_dir / "results.parquet") as tmp:
                results.to_parquet(tmp, index=False)
            with atomic_path(self.out_dir / "results.csv") as tmp:
                results.to_csv(tmp, index=False)
            accuracy = results[results.metric == "accuracy"]
            summary = {
                "benchmark": self.manifest["name"],
                "processes": self.accelerator.num_processes,
                "templates": list(self.templates),
                "protocol": self._protocol_summary(models, cells),
                "models": {m: {"clean_accuracy": float(g[g.corruption == "clean"].value.mean()),
                               "corrupted_accuracy": float(g[g.corruption != "clean"].value.mean())}
                           for m, g in accuracy.groupby("model", sort=False)},
            }
            with atomic_path(self.out_dir / "summary.json") as tmp:
                tmp.write_text(json.dumps(summary, indent=1))
        return results

    def _protocol_summary(self, models: Sequence[str], cells: Sequence[Cell]) -> dict:
        datasets = dict.fromkeys(cell.dataset for cell in cells)
        return {
            **self.protocol.record(),
            "model_families": {name: family_of(name) for name in models},
            "class_names": {d: {"prompts": self.class_names(d), "labels": self.manifest["datasets"][d]["class_names"]}
                            for d in datasets},
        }


def _pad(local, batch: int, world: int):
    """Pads each process's share to the same length so that ``gather`` works (dropped again by ``_unpad``)."""
    import torch

    size = -(-batch // world)
    if len(local) == size:
        return local
    return torch.cat([local, torch.full((size - len(local), local.shape[1]), float("nan"))])


def _unpad(gathered, batch: int, world: int) -> np.ndarray:
    """Back to the batch's order: process r held rows r, r + world, …"""
    size = -(-batch // world)
    shares = gathered.reshape(world, size, -1).numpy()
    out = np.empty((batch, shares.shape[2]), np.float32)
    for rank in range(world):
        out[rank::world] = shares[rank, : len(range(rank, batch, world))]
    return out


def evaluate(models: Sequence[str], benchmark: str, out_dir: str | Path, *, datasets=None, corruptions=None,
             severities=None, split: str = "test", batch_size: int = 64, templates: Sequence[str] = DEFAULT_TEMPLATES,
             mixed_precision: str = "no", protocol: str = "standard"):
    """Evaluates ``models`` on ``benchmark`` (folder or Hub repo) under ``protocol``; returns long-format results."""
    folder = resolve_benchmark(benchmark)
    cells = plan_cells(folder, datasets, corruptions, severities, split)
    evaluator = Evaluator(folder, Path(out_dir), batch_size=batch_size, templates=templates,
                          mixed_precision=mixed_precision, protocol=protocol)
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
            frames.append(frame.assign(model=model, dataset=dataset, corruption=corruption, severity=severity,
                                       split=path.stem))
    columns = ["model", "dataset", "corruption", "severity", "split", "index", "label", "pred", "probs"]
    return pd.concat(frames, ignore_index=True)[columns]


def run_from_args(args: argparse.Namespace):
    csv = lambda value: [v.strip() for v in value.split(",") if v.strip()] if value else None  # noqa: E731
    severities = [int(s) for s in csv(args.severities)] if args.severities else None
    return evaluate(csv(args.models), args.benchmark, args.out, datasets=csv(args.datasets),
                    corruptions=csv(args.corruptions), severities=severities, split=args.split,
                    batch_size=args.batch_size, mixed_precision=args.mixed_precision,
                    protocol=getattr(args, "protocol", "standard"))


def main(argv: Sequence[str] | None = None) -> int:
    from .cli import add_evaluate_arguments

    parser = argparse.ArgumentParser(prog="python -m hf_robustmed.evaluation", description=__doc__)
    add_evaluate_arguments(parser)
    run_from_args(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
