"""The corruption engine: MedMNIST-C, MediMeta-C and ImageNet-C corruptions, fast and deterministic.

>>> from hf_robustmed.corruptions import corrupt, list_corruptions
>>> out = corrupt(image, "motion_blur", 3, suite="medmnist-c/bloodmnist", seed=0, key=17)
>>> out = corrupt(image, "motion_blur", 2.5, suite="medmnist-c/bloodmnist")   # continuous intensity
>>> augment = RandomCorruption(suite="medimeta-c", continuous=True, seed=0)   # a training transform
"""

# Importing the operations' modules registers them (their @register_op decorators run).
from . import artefacts, blur, color, digital, noise, weather  # noqa: F401
from .api import (
    CorruptionInfo,
    corrupt,
    corrupt_batch,
    describe_corruptions,
    format_param,
    iter_corrupt,
    list_corruptions,
    list_suites,
    pil_luma,
)
from .augment import SEEN_FAMILIES, RandomCorruption, corruption_family, seen_corruptions, split_corruptions
from .registry import Op, get_op, list_ops, register_op
from .seeding import sample_rng
from .suites import MEDIMETA_C_CORRUPTIONS, MEDMNIST_DATASETS, SUITES, Suite, SuiteEntry, get_suite

__all__ = [
    "MEDIMETA_C_CORRUPTIONS",
    "MEDMNIST_DATASETS",
    "SEEN_FAMILIES",
    "SUITES",
    "CorruptionInfo",
    "Op",
    "RandomCorruption",
    "Suite",
    "SuiteEntry",
    "corrupt",
    "corrupt_batch",
    "corruption_family",
    "describe_corruptions",
    "format_param",
    "get_op",
    "get_suite",
    "iter_corrupt",
    "list_corruptions",
    "list_ops",
    "list_suites",
    "pil_luma",
    "register_op",
    "sample_rng",
    "seen_corruptions",
    "split_corruptions",
]
