"""What the study is: its collections, datasets, models, protocols and RobustMedCLIP runs, as data.

A :class:`Study` is the whole reproduction of the paper's robustness table (SPEC §9): the paper's 12 datasets in
two collections (MediMeta-C from MedIMeta folders, MedMNIST-C from MedMNIST+ 224-px npz files), the four zero-shot
baselines, RobustMedCLIP trained with the paper's recipe at the chosen ranks and few-shot fractions, the authors'
released checkpoints converted to PEFT where they can be fetched, and both zero-shot protocols. Every choice is a
field, so a smaller study (a subset, local sources, stand-in models) runs through the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..adaptation.config import PAPER_DATASETS
from ..data.benchmarks import PAPER_MEDMNIST
from ..data.medimeta import MEDIMETA_DATASETS
from ..protocols import PROTOCOLS

REFERENCE = "clip-vit-b16"  # the mCE reference: CLIP ViT-B/16 = 100 (SPEC §6)
ORIGINAL_REPO = "razaimam45/RobustMedCLIP"  # the authors' Hub repo of checkpoints (SPEC §4, §7.1)
ORIGINAL_FILE = "exp-rank-{rank}/vit/fewshot_{fraction}_percent/checkpoints/best_model/model.pth"
PAPER_FRACTIONS = (10, 30, 75, 100)  # percent of each clean validation split (SPEC §7.1)
OVERRIDE = "override:"  # architecture key prefix of a model given by spec
AVAILABILITY = "original/availability.json"  # which of the authors' checkpoints could be fetched (under the output)


@dataclass(frozen=True)
class Collection:
    """One of the paper's two benchmark collections.

    Attributes:
        name: As the paper names it (``MediMeta-C``).
        benchmark: Its key in :data:`hf_robustmed.data.benchmarks.BENCHMARKS` (job builder and grey handling).
        datasets: The paper's datasets of the collection.
        folder: Sub-folder of the source root holding its clean sources.
    """

    name: str
    benchmark: str
    datasets: tuple[str, ...]
    folder: str


COLLECTIONS: tuple[Collection, ...] = (
    Collection("MediMeta-C", "medimeta-c", tuple(MEDIMETA_DATASETS), "medimeta"),
    Collection("MedMNIST-C", "medmnist-c", tuple(PAPER_MEDMNIST), "medmnist"),
)

# Imaging modality of each dataset (SPEC §1.1), for the report's per-modality means and radar axes.
MODALITIES: Mapping[str, str] = MappingProxyType(
    {
        "pbc": "blood-cell microscopy",
        "aml": "blood-cell microscopy",
        "bloodmnist": "blood-cell microscopy",
        "mammo_calc": "breast imaging",
        "mammo_mass": "breast imaging",
        "breastmnist": "breast imaging",
        "pneumonia": "chest X-ray",
        "pneumoniamnist": "chest X-ray",
        "fundus": "retinal fundus",
        "retinamnist": "retinal fundus",
        "oct": "retinal OCT",
        "octmnist": "retinal OCT",
    }
)


@dataclass(frozen=True)
class Baseline:
    """A zero-shot model of the paper's table.

    Attributes:
        name: Registry name (:mod:`hf_robustmed.models`), also the name in every output.
        paper_row: The row of the paper's table it is compared with.
        architecture: Key of its image tower in :data:`hf_robustmed.reproduce.plan.ARCHITECTURES` (timing).
    """

    name: str
    paper_row: str
    architecture: str


BASELINES: Mapping[str, Baseline] = MappingProxyType(
    {
        b.name: b
        for b in (
            Baseline("clip-vit-b16", "CLIP", "vit-b16-openai"),
            Baseline("medclip-vit", "MedCLIP", "swin-tiny"),
            Baseline("biomedclip", "BiomedCLIP", "vit-b16-timm"),
            Baseline("unimedclip", "UniMed-CLIP", "vit-b16-openai"),
        )
    }
)
BASE_MODEL = "biomedclip"  # RobustMedCLIP's backbone


@dataclass(frozen=True)
class StudyModel:
    """A model evaluated by the study.

    Attributes:
        name: Its name in every output.
        spec: What :func:`hf_robustmed.models.create_model` is given.
        paper_row: The row of the paper's table it is compared with.
        architecture: Its image tower (timing key).
        kind: ``baseline``, ``trained`` (our RobustMedCLIP runs) or ``original`` (the authors' converted
            checkpoints).
        overridden: Whether the spec was given on the command line instead of the registry's.
    """

    name: str
    spec: str
    paper_row: str
    architecture: str
    kind: str
    overridden: bool = False


@dataclass(frozen=True)
class RmcRun:
    """One RobustMedCLIP adapter: LoRA rank and few-shot fraction (percent of each validation split)."""

    rank: int
    fraction: int

    @property
    def trained_name(self) -> str:
        return f"robustmedclip-r{self.rank}-f{self.fraction}"

    @property
    def original_name(self) -> str:
        return f"rmc-original-r{self.rank}-f{self.fraction}"

    @property
    def original_file(self) -> str:
        return ORIGINAL_FILE.format(rank=self.rank, fraction=self.fraction)


@dataclass(frozen=True)
class Study:
    """The settings of one reproduction (defaults: the paper's full study).

    Attributes:
        out: Output folder.
        source_root: Clean sources (``medmnist/{flag}_224.npz``, ``medimeta/{id}/``); default ``out/sources``.
        download: Fetch missing sources (MedMNIST MD5-checked); ``False``: use the files as they are.
        datasets: Datasets of the study (any of the paper's 12), in the paper's label-space order.
        corruptions: Corruption names (``None``: each dataset's full set).
        severities: Severities 1..5.
        baselines: Zero-shot baselines (registry names of :data:`BASELINES`).
        overrides: Model name → spec replacing the registry's (local weights, stand-ins).
        protocols: Zero-shot protocols (``standard``, ``rmc``).
        runs: RobustMedCLIP (rank, fraction) pairs to train and, with ``originals``, to fetch and convert.
        train: Train our RobustMedCLIP adapters.
        originals: Fetch and convert the authors' checkpoints of ``runs`` where they can be had.
        epochs: Training epochs (paper: 20).
        train_batch_size: Training images per optimiser step (paper: 256).
        batch_size: Evaluation images per forward pass and process.
        mixed_precision: ``no``, ``bf16`` or ``fp16`` (training and evaluation).
        num_workers: Data-loader workers per process (``None``: the cores available).
        seed: Base seed of the corruptions (SPEC §2.3).
        train_seed: Seed of few-shot sampling and training (paper: 42).
    """

    out: Path
    source_root: Path | None = None
    download: bool = True
    datasets: tuple[str, ...] = PAPER_DATASETS
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    baselines: tuple[str, ...] = tuple(BASELINES)
    overrides: Mapping[str, str] = field(default_factory=dict)
    protocols: tuple[str, ...] = tuple(PROTOCOLS)
    runs: tuple[RmcRun, ...] = tuple(RmcRun(16, f) for f in PAPER_FRACTIONS)
    train: bool = True
    originals: bool = True
    epochs: int = 20
    train_batch_size: int = 256
    batch_size: int = 256
    mixed_precision: str = "no"
    num_workers: int | None = None
    seed: int = 0
    train_seed: int = 42

    def __post_init__(self) -> None:
        _check_subset(self.datasets, PAPER_DATASETS, "dataset")
        _check_subset(self.baselines, tuple(BASELINES), "model")
        _check_subset(self.protocols, tuple(PROTOCOLS), "protocol")
        _check_subset(tuple(self.overrides), (*BASELINES, BASE_MODEL), "model override")
        if REFERENCE not in self.baselines:
            raise ValueError(f"the study needs {REFERENCE}: it is the reference of the CLIP-normalised mCE (= 100)")
        if not self.datasets or not self.protocols:
            raise ValueError("the study needs at least one dataset and one protocol")
        # the paper's order: it fixes RobustMedCLIP's joint label space (SPEC §7.1)
        object.__setattr__(self, "datasets", tuple(d for d in PAPER_DATASETS if d in self.datasets))
        if any(s not in (1, 2, 3, 4, 5) for s in self.severities) or not self.severities:
            raise ValueError(f"severities must be among 1..5, got {list(self.severities)}")
        for run in self.runs:
            if run.rank < 1 or not 0 < run.fraction <= 100:
                raise ValueError(f"bad RobustMedCLIP run: rank {run.rank}, fraction {run.fraction} %")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")

    @property
    def sources(self) -> Path:
        return Path(self.source_root) if self.source_root is not None else Path(self.out) / "sources"

    def collections(self) -> list[tuple[Collection, list[str]]]:
        """The collections with at least one chosen dataset, and their chosen datasets (paper order)."""
        chosen = [(c, [d for d in self.datasets if d in c.datasets]) for c in COLLECTIONS]
        return [(c, names) for c, names in chosen if names]

    def spec(self, name: str) -> str:
        """The spec a model is created from: the override, or its registry name."""
        return self.overrides.get(name, name)

    def adapter_dir(self, run: RmcRun, kind: str) -> Path:
        return (
            Path(self.out)
            / ("adapters" if kind == "trained" else "original")
            / (run.trained_name if kind == "trained" else run.original_name)
        )

    def models(self, available_originals: Sequence[RmcRun] = ()) -> list[StudyModel]:
        """Every model evaluated: the baselines, our adapters, the converted originals that could be had."""
        models = [
            StudyModel(b, self.spec(b), BASELINES[b].paper_row, self.architecture(b), "baseline", b in self.overrides)
            for b in self.baselines
        ]
        for kind, runs in (("trained", self.runs if self.train else ()), ("original", available_originals)):
            for run in runs:
                name = run.trained_name if kind == "trained" else run.original_name
                models.append(
                    StudyModel(
                        name,
                        f"peft:{self.adapter_dir(run, kind).resolve()}",
                        "RobustMedCLIP",
                        self.architecture(BASE_MODEL),
                        kind,
                    )
                )
        return models

    def architecture(self, name: str) -> str:
        """Timing key of a baseline's image tower: its registry architecture, or ``override:NAME`` for a model
        given by spec (timed as loaded, since its architecture is whatever the spec holds)."""
        return f"{OVERRIDE}{name}" if name in self.overrides else BASELINES[name].architecture


def _check_subset(given: Sequence[str], valid: Sequence[str], what: str) -> None:
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise ValueError(f"unknown {what}(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}")
    if len(set(given)) != len(given):
        raise ValueError(f"a {what} is given twice: {', '.join(given)}")


def evaluation_dir(study: Study, protocol: str, collection: str, model: str) -> Path:
    """The results folder of one model on one collection under one protocol."""
    return Path(study.out) / "evaluation" / protocol / collection / model
