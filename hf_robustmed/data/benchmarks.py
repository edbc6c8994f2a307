"""The benchmark definitions: MedMNIST-C and MediMeta-C as lists of build jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..corruptions import MEDIMETA_C_CORRUPTIONS, get_suite
from .builder import BuildJob
from .medimeta import MEDIMETA_DATASETS, load_medimeta
from .medmnist import MEDMNIST_INFO, load_medmnist

PAPER_MEDMNIST = ("bloodmnist", "breastmnist", "octmnist", "pneumoniamnist", "retinamnist")


def _select(requested: Sequence[str] | None, available: Sequence[str], what: str) -> list[str]:
    if not requested:
        return list(available)
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))}; valid: {', '.join(available)}")
    return list(requested)


def _corruptions_for(suite: str, requested: Sequence[str] | None) -> tuple[str, ...] | None:
    if not requested:
        return None
    return tuple(name for name in requested if name in get_suite(suite).corruptions)


def _check_corruptions(requested: Sequence[str] | None, suites: Sequence[str]) -> None:
    known = {name for suite in suites for name in get_suite(suite).corruptions}
    unknown = [name for name in requested or () if name not in known]
    if unknown:
        raise ValueError(f"unknown corruption(s) {', '.join(map(repr, unknown))}; valid: {', '.join(sorted(known))}")


def medmnist_c_jobs(
    root: str | Path,
    *,
    datasets: Sequence[str] | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    splits: Sequence[str] = ("test",),
    size: int = 224,
    download: bool = False,
) -> list[BuildJob]:
    """MedMNIST-C: each 2-D MedMNIST dataset's test split with its own MedMNIST-C corruption set (224 px)."""
    flags = _select(datasets, list(MEDMNIST_INFO), "MedMNIST dataset(s)")
    _check_corruptions(corruptions, [f"medmnist-c/{flag}" for flag in flags])
    jobs = []
    for flag in flags:
        suite = f"medmnist-c/{flag}"
        chosen = _corruptions_for(suite, corruptions)
        if chosen == ():
            continue  # none of the requested corruptions belongs to this dataset's set
        for split in splits:
            source = load_medmnist(flag, split, size=size, root=root, download_missing=download)
            jobs.append(BuildJob(source, suite, chosen, tuple(severities)))
    return jobs


def medimeta_c_jobs(
    root: str | Path,
    *,
    datasets: Sequence[str] | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    splits: Sequence[str] = ("test", "validation"),
    download: bool = False,
) -> list[BuildJob]:
    """MediMeta-C: the paper's 7 MedIMeta datasets, test and validation splits, 7 ImageNet-C corruptions."""
    ids = _select(datasets, list(MEDIMETA_DATASETS), "MedIMeta dataset(s)")
    chosen = tuple(_select(corruptions, MEDIMETA_C_CORRUPTIONS, "MediMeta-C corruption(s)"))
    return [
        BuildJob(
            load_medimeta(dataset, split, root=root, download_missing=download), "medimeta-c", chosen, tuple(severities)
        )
        for dataset in ids
        for split in splits
    ]


@dataclass(frozen=True)
class BenchmarkDefinition:
    """A named benchmark: how to make its jobs, and how it stores grey images."""

    name: str
    jobs: Callable[..., list[BuildJob]]
    grey: str


BENCHMARKS = {
    "medmnist-c": BenchmarkDefinition("MedMNIST-C", medmnist_c_jobs, "native"),
    "medimeta-c": BenchmarkDefinition("MediMeta-C", medimeta_c_jobs, "rgb"),
}


def get_benchmark(name: str) -> BenchmarkDefinition:
    try:
        return BENCHMARKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}") from None
