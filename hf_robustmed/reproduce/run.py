"""Running a study: each step skips what is done with the same inputs, and a killed run resumes.

Steps, in order: fetch the clean sources (checksum-verified where a checksum is published) and MedCLIP's weights;
build clean-only benchmark folders of the validation splits (RobustMedCLIP's training data); train our adapters;
fetch and convert the authors' checkpoints; evaluate every model under every protocol on each collection, the
corruptions made on the fly from the clean sources; write the paper's table, the figures and the study record.

What makes a step done: the builder's own fingerprint (sources by content and settings) for the training
benchmarks; a step record (``steps/{name}.json``, the SHA-256 of the step's inputs) for training and conversion,
whose outputs are deleted and redone when the inputs changed; and the evaluation's per-cell fingerprints (model
weights digest, templates, protocol, precision, benchmark) for every evaluated cell.

Under ``accelerate launch`` every process runs this module: fetching, building, converting and writing the table
happen on the main process (the others wait); training and evaluation are shared by all processes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..files import write_json
from .plan import count, duration, load_split, suite_of
from .study import AVAILABILITY, BASE_MODEL, ORIGINAL_REPO, RmcRun, Study, StudyModel, evaluation_dir

STEPS = "steps"
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp[^/]*$")  # hf_robustmed.files.atomic_path's temporary names


def fingerprint(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


class Records:
    """Step records in ``{out}/steps``: the inputs of each step, and whether it finished with them."""

    def __init__(self, out: Path):
        self.folder = Path(out) / STEPS

    def _path(self, name: str) -> Path:
        return self.folder / f"{name.replace('/', '--')}.json"

    def read(self, name: str) -> dict | None:
        path = self._path(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def done(self, name: str, inputs: dict) -> bool:
        record = self.read(name)
        return bool(record and record["status"] == "done" and record["fingerprint"] == fingerprint(inputs))

    def start(self, name: str, inputs: dict, output: Path) -> None:
        """Marks a step started; deletes ``output`` when it was made from other inputs (or by no recorded step)."""
        record = self.read(name)
        if output.exists() and (record is None or record["fingerprint"] != fingerprint(inputs)):
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        write_json(
            self._path(name), {"step": name, "status": "running", "fingerprint": fingerprint(inputs), "inputs": inputs}
        )

    def finish(self, name: str, inputs: dict, seconds: float, **outputs) -> None:
        write_json(
            self._path(name),
            {
                "step": name,
                "status": "done",
                "fingerprint": fingerprint(inputs),
                "inputs": inputs,
                "seconds": round(seconds, 1),
                **outputs,
            },
        )


class StudyProgress:
    """One progress bar over the whole study, in work units (≈ ViT-B/16 image-evaluations), with an ETA
    calibrated on the steps run so far (steps found done do not count towards the speed)."""

    def __init__(self, total: float, enabled: bool):
        from tqdm.auto import tqdm

        self.enabled = enabled
        self.bar = tqdm(
            total=round(total),
            desc="study",
            unit="u",
            position=0,
            disable=not enabled,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} units [{elapsed}{postfix}]",
        )
        self.worked_units, self.worked_seconds = 0.0, 0.0

    def step(self, label: str, units: float, fn: Callable[[], bool]):
        """Runs ``fn`` (returns whether it did work) as ``units`` of the study."""
        self.bar.set_description_str(f"study: {label}")
        started = time.perf_counter()
        worked = fn()
        if worked:
            self.worked_units += units
            self.worked_seconds += time.perf_counter() - started
        self.bar.update(round(units))
        remaining = self.bar.total - self.bar.n
        if self.worked_units:
            self.bar.set_postfix_str(f"ETA ≈ {duration(remaining * self.worked_seconds / self.worked_units)}")
        if self.enabled:
            self.bar.write(f"[study] {label}: {'done' if worked else 'already done, skipped'}")

    def set_total(self, total: float) -> None:
        self.bar.total = round(total)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


@dataclass
class Context:
    """What the steps share."""

    study: Study
    records: Records
    state: object  # accelerate.PartialState
    progress: bool

    @property
    def main(self) -> bool:
        return self.state.is_main_process

    def barrier(self) -> None:
        self.state.wait_for_everyone()


# --- 1. sources and weights -------------------------------------------------------------------------------------
def fetch_sources(ctx: Context) -> bool:
    """Every clean source split the study reads, fetched if missing; a MedMNIST file (present or fetched) is
    MD5-checked once per run."""
    splits = ("test", "validation") if ctx.study.train else ("test",)
    for collection, datasets in ctx.study.collections():
        for dataset in datasets:
            for k, split in enumerate(splits):
                load_split(ctx.study, collection, dataset, split, download=ctx.study.download and k == 0)
    return True


def fetch_medclip(ctx: Context) -> bool:
    """MedCLIP's release is not on the Hub: its registry folder is filled by ``download_medclip``."""
    from ..models.medclip import download_medclip

    if "medclip-vit" not in ctx.study.baselines or "medclip-vit" in ctx.study.overrides or not ctx.study.download:
        return False
    download_medclip("vit")
    return True


# --- 2. training data and training --------------------------------------------------------------------------------
def train_data_dir(study: Study, collection) -> Path:
    return Path(study.out) / "train-data" / f"{collection.name}-clean"


def build_train_data(ctx: Context) -> bool:
    """Clean-only benchmark folders of the validation splits (``{dataset}-clean`` configs), which the trainer reads.

    A job with no severities plans only the clean config (an empty corruption set would mean all of them).
    """
    from ..data import build_benchmark
    from ..data.benchmarks import BENCHMARKS
    from ..data.builder import BuildJob

    for collection, datasets in ctx.study.collections():
        jobs = [
            BuildJob(load_split(ctx.study, collection, d, "validation"), suite_of(collection, d), None, ())
            for d in datasets
        ]
        build_benchmark(
            jobs,
            train_data_dir(ctx.study, collection),
            name=f"{collection.name} (clean validation)",
            seed=ctx.study.seed,
            grey=BENCHMARKS[collection.benchmark].grey,
            progress=ctx.progress,
            overwrite=True,
        )
    return True


def train_config(study: Study, run: RmcRun):
    """The paper's recipe (:class:`~hf_robustmed.adaptation.TrainConfig` defaults) at the run's rank and fraction."""
    from accelerate import PartialState

    from ..adaptation import TrainConfig
    from ..data.loader import default_num_workers

    workers = study.num_workers if study.num_workers is not None else default_num_workers(PartialState().num_processes)
    return TrainConfig(
        num_workers=workers,
        benchmarks=[str(train_data_dir(study, c)) for c, _ in study.collections()],
        output_dir=str(study.adapter_dir(run, "trained")),
        datasets=list(study.datasets),
        fraction=run.fraction / 100,
        rank=run.rank,
        base_model=study.spec(BASE_MODEL),
        epochs=study.epochs,
        batch_size=study.train_batch_size,
        seed=study.train_seed,
        mixed_precision=study.mixed_precision,
    )


def base_identity(study: Study) -> dict:
    """Which base weights an adapter is trained on or converted for (stand-in or pretrained, and where from)."""
    from ..models.provenance import stored_provenance

    return stored_provenance(study.spec(BASE_MODEL))


def train_inputs(study: Study, run: RmcRun) -> dict:
    from ..data.builder import build_fingerprint

    ignored = ("output_dir", "benchmarks", "num_workers", "log_every")  # the batches do not depend on these
    config = {k: v for k, v in train_config(study, run).to_dict().items() if k not in ignored}
    data = {c.name: build_fingerprint(train_data_dir(study, c)) for c, _ in study.collections()}
    return {"config": config, "training_data": data, "base": base_identity(study)}


def train_run(ctx: Context, run: RmcRun) -> bool:
    """Trains one adapter (resuming from its last epoch checkpoint), unless it is done with the same inputs."""
    from ..adaptation.train import train

    name, inputs = f"train/{run.trained_name}", train_inputs(ctx.study, run)
    if ctx.records.done(name, inputs):
        return False
    started = time.perf_counter()
    if ctx.main:
        ctx.records.start(name, inputs, ctx.study.adapter_dir(run, "trained"))
    ctx.barrier()
    train(train_config(ctx.study, run), progress=ctx.progress)
    if ctx.main:
        summary = json.loads((ctx.study.adapter_dir(run, "trained") / "training_summary.json").read_text())
        ctx.records.finish(name, inputs, time.perf_counter() - started, summary=summary)
    ctx.barrier()
    return True


# --- 3. the authors' checkpoints ------------------------------------------------------------------------------------
def fetch_original(run: RmcRun) -> tuple[Path | None, str]:
    """The authors' ``model.pth`` of a run from the Hub (or the cache), or ``None`` and why not."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(ORIGINAL_REPO, run.original_file)), "fetched"
    except Exception as error:  # noqa: BLE001 - any failure means "not available", recorded with its reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"{type(error).__name__}: {reason}"


def convert_originals(ctx: Context) -> bool:
    """Fetches and converts each run's original checkpoint; records which could be had (``original/``)."""
    from ..adaptation.convert import convert_rmc_checkpoint

    availability = {}
    for run in ctx.study.runs if ctx.study.originals else ():
        path, reason = fetch_original(run)
        availability[run.original_name] = {
            "available": path is not None,
            "source": f"{ORIGINAL_REPO}/{run.original_file}",
            "detail": str(path) if path else reason,
        }
        if path is None:
            continue
        name = f"convert/{run.original_name}"
        inputs = {"checkpoint": str(path), "base": base_identity(ctx.study)}
        if not ctx.records.done(name, inputs):
            started = time.perf_counter()
            ctx.records.start(name, inputs, ctx.study.adapter_dir(run, "original"))
            convert_rmc_checkpoint(path, ctx.study.adapter_dir(run, "original"), base_model=ctx.study.spec(BASE_MODEL))
            ctx.records.finish(name, inputs, time.perf_counter() - started)
    write_json(Path(ctx.study.out) / AVAILABILITY, availability)
    return bool(availability)


def available_originals(study: Study) -> list[RmcRun]:
    path = Path(study.out) / AVAILABILITY
    found = json.loads(path.read_text()) if path.is_file() else {}
    return [run for run in study.runs if found.get(run.original_name, {}).get("available")]


# --- 4. evaluation --------------------------------------------------------------------------------------------------
def source_benchmarks(study: Study) -> dict:
    """One on-the-fly benchmark per collection: its clean test sources, corrupted in the loader workers."""
    from ..data.benchmarks import BENCHMARKS
    from ..evaluation import SourceBenchmark
    from .plan import corruptions_of

    benchmarks = {}
    for collection, datasets in study.collections():
        definition = BENCHMARKS[collection.benchmark]
        wanted = sorted({c for d in datasets for c in corruptions_of(study, collection, d)})
        jobs = definition.jobs(
            study.sources / collection.folder,
            datasets=datasets,
            corruptions=wanted if study.corruptions is not None else None,
            severities=tuple(study.severities),
            splits=("test",),
            download=False,
        )
        benchmarks[collection.name] = SourceBenchmark(jobs, name=definition.name, seed=study.seed, grey=definition.grey)
    return benchmarks


def evaluate_model(ctx: Context, model: StudyModel, benchmarks: dict, step: Callable) -> None:
    """One model, loaded once, under every protocol on every collection (finished cells are not recomputed)."""
    from ..models import create_model, family_of

    loaded = replace(create_model(model.spec, device=str(ctx.state.device)), name=model.name)
    # a baseline given by another spec (local weights) keeps its registered family (rmc's switches follow it)
    loaded = replace(loaded, family=loaded.family or family_of(model.name))
    for protocol in ctx.study.protocols:
        for collection, benchmark in benchmarks.items():
            out = evaluation_dir(ctx.study, protocol, collection, model.name)
            step(
                f"evaluate {protocol}/{collection}/{model.name}",
                collection,
                lambda out=out, bench=benchmark, protocol=protocol: _evaluate(ctx, loaded, bench, out, protocol),
            )


def _evaluate(ctx: Context, loaded, benchmark, out: Path, protocol: str) -> bool:
    from ..evaluation import evaluate

    before = _cell_mtimes(out)
    evaluate(
        [loaded],
        benchmark,
        out,
        batch_size=ctx.study.batch_size,
        mixed_precision=ctx.study.mixed_precision,
        protocol=protocol,
        num_workers=ctx.study.num_workers,
    )
    return _cell_mtimes(out) != before


def _cell_mtimes(out: Path) -> dict:
    cells = out / "cells"
    return {str(p): p.stat().st_mtime_ns for p in cells.rglob("*.parquet")} if cells.exists() else {}


# --- the whole study ------------------------------------------------------------------------------------------------
def run_study(study: Study, *, progress: bool = True) -> Path:
    """Runs (or resumes) the study; returns the path of ``paper_table.md``."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from .table import write_outputs

    # as Accelerator would: its process state is shared, and the first one made decides it
    ctx = Context(study, Records(study.out), PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU")), progress)
    if ctx.main:
        Path(study.out).mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(Path(study.out))
    ctx.barrier()
    counts = count(study)  # SPEC's counts for sources not fetched yet
    bar = StudyProgress(_total_units(study, counts), enabled=ctx.main and progress)
    _step(ctx, bar, "fetch and verify the sources", 1, lambda: fetch_sources(ctx), main_only=True)
    counts = count(study)  # the files' own counts
    bar.set_total(_total_units(study, counts))
    _step(ctx, bar, "fetch MedCLIP weights", 1, lambda: fetch_medclip(ctx), main_only=True)
    if study.train and study.runs:
        _step(
            ctx,
            bar,
            "build clean training benchmarks",
            0.1 * sum(counts.validation.values()),
            lambda: build_train_data(ctx),
            main_only=True,
        )
        for run in study.runs:
            _step(
                ctx,
                bar,
                f"train {run.trained_name}",
                _training_units(study, counts, run),
                lambda run=run: train_run(ctx, run),
            )
    _step(ctx, bar, "fetch and convert the authors' checkpoints", 1, lambda: convert_originals(ctx), main_only=True)
    bar.set_total(_total_units(study, counts))  # now that the available checkpoints are known
    benchmarks = source_benchmarks(study)
    for model in study.models(available_originals(study)):
        evaluate_model(
            ctx,
            model,
            benchmarks,
            lambda label, collection, fn: _step(ctx, bar, label, counts.evaluations(study, collection), fn),
        )
    table = Path(study.out) / "paper_table.md"
    _step(
        ctx,
        bar,
        "paper table, figures and study record",
        1,
        lambda: bool(write_outputs(study, counts, available_originals(study))),
        main_only=True,
    )
    bar.close()
    return table


def remove_stale_temporaries(out: Path) -> None:
    """Deletes the temporary files a killed run left (``.{name}.{8 hex}.tmp{suffix}``, written before a rename);
    what they were to become is redone by the resumed step."""
    for path in out.rglob(".*.tmp*"):
        if path.is_file() and TEMPORARY.match(path.name):
            path.unlink()


def _step(ctx: Context, bar: StudyProgress, label: str, units: float, fn: Callable, *, main_only: bool = False) -> None:
    """Runs ``fn()`` (on the main process only, the others waiting, with ``main_only``) under the study's bar."""
    if main_only:
        if ctx.main:
            bar.step(label, units, fn)
        ctx.barrier()
    else:
        bar.step(label, units, fn)


def _total_units(study: Study, counts) -> float:
    models = len(study.models(available_originals(study)))
    evaluation = models * len(study.protocols) * sum(counts.evaluations(study, c) for c in counts.test)
    training = sum(_training_units(study, counts, r) for r in (study.runs if study.train else ()))
    return evaluation + training + 0.1 * sum(counts.validation.values()) + 4


def _training_units(study: Study, counts, run: RmcRun) -> float:
    """A run's work: a training step costs about three inferences per image, plus the per-epoch selection."""
    return (3 * counts.train_images(run.fraction) + counts.selection_images(run.fraction)) * study.epochs
