"""The named benchmarks ``hf-robustmed build`` knows, as a registry of job builders (:data:`BENCHMARKS`).

Each entry turns a source folder into :class:`~hf_robustmed.data.builder.BuildJob` s: MedMNIST-C and MediMeta-C
from their clean sources, the two published releases imported as they are, and any image-classification dataset.
:func:`benchmark_jobs` builds any of them from one set of typed options; a new benchmark is one
:func:`register_benchmark` call (the CLI's choices come from the registry).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..corruptions import MEDIMETA_C_CORRUPTIONS, get_suite
from .builder import BuildJob
from .imagefolder import load_image_dataset
from .medimeta import MEDIMETA_DATASETS, load_medimeta, load_medimeta_c_npz
from .medmnist import MEDMNIST_INFO, SIZES, load_medmnist, load_medmnist_c_npz, medmnist_filename

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
    """MedMNIST-C: each 2-D MedMNIST dataset's test split with its own MedMNIST-C corruption set (224 px).

    Raises:
        ValueError: For unknown datasets or corruptions, or missing or bad source files (with a hint naming the
            ``--size`` of MedMNIST files of another size found in ``root``).
    """
    flags = _select(datasets, list(MEDMNIST_INFO), "MedMNIST dataset(s)")
    _check_corruptions(corruptions, [f"medmnist-c/{flag}" for flag in flags])
    jobs = []
    for flag in flags:
        suite = f"medmnist-c/{flag}"
        chosen = _corruptions_for(suite, corruptions)
        if chosen == ():
            continue  # none of the requested corruptions belongs to this dataset's set
        for split in splits:
            try:
                source = load_medmnist(flag, split, size=size, root=root, download_missing=download)
            except ValueError as error:
                hint = medmnist_size_hint(root, size)
                if not hint:
                    raise
                raise ValueError(f"{error}; {hint}") from None
            jobs.append(BuildJob(source, suite, chosen, tuple(severities)))
    return jobs


def medmnist_size_hint(root: str | Path, size: int) -> str:
    """A hint naming the ``--size`` of the MedMNIST files that are in ``root`` when ``size``'s are not.

    Returns:
        ``"… found: pass --size 28"``, or ``""`` when no file of another size is there.
    """
    root = Path(root)
    found = {
        other: sorted(flag for flag in MEDMNIST_INFO if (root / medmnist_filename(flag, other)).is_file())
        for other in SIZES
        if other != size
    }
    found = {other: flags for other, flags in found.items() if flags}
    if not found:
        return ""
    sizes = ", ".join(
        f"{other} px ({', '.join(medmnist_filename(f, other) for f in flags[:3])}{', …' if len(flags) > 3 else ''})"
        for other, flags in found.items()
    )
    return f"{root} holds MedMNIST files of another size: {sizes}; pass --size {next(iter(found))} to build from them"


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


def _release_datasets(clean_root: str | Path | None, datasets: Sequence[str] | None) -> list[str]:
    if not clean_root:
        raise ValueError("importing a release needs --clean-root (the clean sources, to check labels and order)")
    if not datasets:
        raise ValueError("importing a release needs --datasets")
    return list(datasets)


def medmnist_c_release_jobs(
    root: str | Path,
    *,
    clean_root: str | Path | None = None,
    datasets: Sequence[str] | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    splits: Sequence[str] = ("test",),
    size: int = 224,
) -> list[BuildJob]:
    """The published MedMNIST-C release (Zenodo 11471504) imported as it is: its precomputed test images.

    Args:
        root: Folder of the release (``{flag}/{corruption}.npz``).
        clean_root: Folder of the clean MedMNIST+ files (their labels and order are checked against the release).
        datasets: The datasets to import (required).
        corruptions: Subset of the release's corruptions (default: all).
        severities: Severities to import.
        splits: Only ``test`` (the release has no other split).
        size: Size of the clean MedMNIST+ files.

    Raises:
        ValueError: Without ``clean_root`` or ``datasets``, for a split other than test, or a release that does not
            match its clean source.
    """
    flags = _release_datasets(clean_root, datasets)
    if tuple(splits) != ("test",):
        raise ValueError(f"the MedMNIST-C release has only the test split, not {', '.join(splits)}")
    return [
        BuildJob(
            load_medmnist_c_npz(root, flag, clean_root=clean_root, size=size),
            None,
            tuple(corruptions) if corruptions else None,
            tuple(severities),
        )
        for flag in flags
    ]


def medimeta_c_release_jobs(
    root: str | Path,
    *,
    clean_root: str | Path | None = None,
    datasets: Sequence[str] | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    splits: Sequence[str] = ("test",),
) -> list[BuildJob]:
    """The authors' MediMeta-C release (``razaimam45/MediMeta-C``) imported as it is: its precomputed images.

    Args:
        root: Folder of the release (``{dataset}/{split}/{corruption}_severity_{k}.npz``).
        clean_root: Folder of the MedIMeta sources (their labels are checked against the release).
        datasets: The datasets to import (required).
        corruptions: Subset of the release's corruptions (default: all).
        severities: Severities to import.
        splits: Splits to import.

    Raises:
        ValueError: Without ``clean_root`` or ``datasets``, or for a release that does not match its source.
    """
    ids = _release_datasets(clean_root, datasets)
    return [
        BuildJob(
            load_medimeta_c_npz(root, dataset, split, source_root=clean_root),
            None,
            tuple(corruptions) if corruptions else None,
            tuple(severities),
        )
        for dataset in ids
        for split in splits
    ]


def image_dataset_jobs(
    root: str | Path,
    *,
    suite: str = "imagenet-c",
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    splits: Sequence[str] = ("test",),
) -> list[BuildJob]:
    """Any image-classification dataset: an image folder (``{split}/{class}/*``), a local dataset or a Hub id.

    Args:
        root: An image folder, or a path / Hub id that ``datasets.load_dataset`` loads.
        suite: The corruption parameter suite.
        corruptions: Subset of the suite's corruptions (default: all).
        severities: Severities to build.
        splits: Splits to build.
    """
    jobs = []
    for split in splits:
        if Path(root).is_dir():
            source = load_image_dataset("imagefolder", split, data_dir=str(root))
        else:
            source = load_image_dataset(str(root), split)
        jobs.append(BuildJob(source, suite, tuple(corruptions) if corruptions else None, tuple(severities)))
    return jobs


@dataclass(frozen=True)
class BenchmarkDefinition:
    """A named benchmark: how to make its jobs, and how it stores grey images.

    Attributes:
        name: Its name in the card and manifest; ``None``: ``{dataset}-C`` after its first job's dataset.
        jobs: ``fn(source_root, **options) -> list[BuildJob]``; its keyword parameters are the options of
            :func:`benchmark_jobs` it takes (the others are not passed).
        grey: Default grey handling, ``native`` or ``rgb`` (see :func:`~hf_robustmed.data.build_benchmark`).
        help: One line for the CLI's help.
        corrupts: Its jobs make the corruptions from clean sources, so ``evaluate --source KEY`` can make them on
            the fly instead; ``False`` for imported releases, whose corrupted images are the sources.
    """

    name: str | None
    jobs: Callable[..., list[BuildJob]]
    grey: str
    help: str = ""
    corrupts: bool = True


BENCHMARKS: dict[str, BenchmarkDefinition] = {}


def register_benchmark(key: str, definition: BenchmarkDefinition) -> BenchmarkDefinition:
    """Adds a named benchmark to :data:`BENCHMARKS` (``hf-robustmed build KEY``).

    Raises:
        ValueError: If ``key`` is taken.
    """
    if key in BENCHMARKS:
        raise ValueError(f"benchmark {key!r} is already registered")
    BENCHMARKS[key] = definition
    return definition


register_benchmark(
    "medmnist-c",
    BenchmarkDefinition("MedMNIST-C", medmnist_c_jobs, "native", "MedMNIST-C from MedMNIST+ npz files"),
)
register_benchmark(
    "medimeta-c", BenchmarkDefinition("MediMeta-C", medimeta_c_jobs, "rgb", "MediMeta-C from MedIMeta folders")
)
register_benchmark(
    "medmnist-c-release",
    BenchmarkDefinition(
        "MedMNIST-C", medmnist_c_release_jobs, "native", "the published MedMNIST-C, imported", corrupts=False
    ),
)
register_benchmark(
    "medimeta-c-release",
    BenchmarkDefinition(
        "MediMeta-C", medimeta_c_release_jobs, "rgb", "the authors' MediMeta-C, imported", corrupts=False
    ),
)
register_benchmark(
    "image-dataset",
    BenchmarkDefinition(None, image_dataset_jobs, "native", "any image-classification dataset or image folder"),
)


def get_benchmark(name: str) -> BenchmarkDefinition:
    """The registered benchmark ``name`` (case-insensitive).

    Raises:
        ValueError: Naming the registered ones, if there is none of that name.
    """
    try:
        return BENCHMARKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}") from None


def clean_sources() -> list[str]:
    """The benchmarks whose corruptions are made from clean sources: ``evaluate --source`` choices."""
    return [key for key, definition in BENCHMARKS.items() if definition.corrupts]


@dataclass(frozen=True)
class BenchmarkJobs:
    """What :func:`~hf_robustmed.data.build_benchmark` needs to build a named benchmark."""

    jobs: list[BuildJob]
    name: str
    grey: str

    def astuple(self) -> tuple[list[BuildJob], str, str]:
        """``(jobs, name, grey)``."""
        return self.jobs, self.name, self.grey


def benchmark_jobs(
    benchmark: str,
    source_root: str | Path,
    *,
    datasets: Sequence[str] | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    splits: Sequence[str] | None = None,
    size: int = 224,
    clean_root: str | Path | None = None,
    suite: str = "imagenet-c",
    download: bool = False,
    name: str | None = None,
    grey: str | None = None,
) -> BenchmarkJobs:
    """The jobs, name and grey handling of a registered benchmark (``hf-robustmed build BENCHMARK``).

    Each benchmark takes the options its job builder has parameters for and ignores the others.

    Args:
        benchmark: A key of :data:`BENCHMARKS`.
        source_root: Folder (or, for ``image-dataset``, dataset path or Hub id) of the sources.
        datasets: Subset of the benchmark's datasets (default: all; releases need it).
        corruptions: Subset of the corruptions (default: each dataset's set).
        severities: Severities to build.
        splits: Splits to build (default: the benchmark's own).
        size: MedMNIST image size (28, 64, 128 or 224).
        clean_root: Releases: the clean sources their labels and order are checked against.
        suite: ``image-dataset``: the corruption parameter suite.
        download: Download missing sources (checksummed).
        name: Name for the card and manifest (default: the benchmark's).
        grey: ``native`` or ``rgb`` (default: the benchmark's).

    Raises:
        ValueError: For an unknown benchmark, or options its job builder refuses.
    """
    definition = get_benchmark(benchmark)
    options = {
        "datasets": datasets,
        "corruptions": corruptions,
        "severities": tuple(severities),
        "size": size,
        "clean_root": clean_root,
        "suite": suite,
        "download": download,
        **({"splits": tuple(splits)} if splits else {}),
    }
    accepted = inspect.signature(definition.jobs).parameters
    jobs = definition.jobs(source_root, **{key: value for key, value in options.items() if key in accepted})
    default_name = definition.name or (f"{jobs[0].source.dataset}-C" if jobs else benchmark)
    return BenchmarkJobs(jobs, name or default_name, grey or definition.grey)
