"""Benchmark data: sources in their published formats, and the builder of Hub-ready corruption benchmarks."""

from .arrays import NpzArray
from .builder import BuildReport, build_benchmark, plan_configs
from .imagefolder import load_image_dataset
from .manifest import BenchmarkManifest
from .medimeta import MEDIMETA_DATASETS, load_medimeta, load_medimeta_c_npz
from .medmnist import MEDMNIST_INFO, load_medmnist, load_medmnist_c_npz
from .source import SourceSplit

__all__ = [
    "MEDIMETA_DATASETS",
    "MEDMNIST_INFO",
    "BenchmarkManifest",
    "BuildReport",
    "NpzArray",
    "SourceSplit",
    "build_benchmark",
    "load_image_dataset",
    "load_medimeta",
    "load_medimeta_c_npz",
    "load_medmnist",
    "load_medmnist_c_npz",
    "plan_configs",
]
