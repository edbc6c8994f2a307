"""Suites: named parameter sets binding public corruption names to operations and five severity parameters.

* ``imagenet-c``: Hendrycks & Dietterich's corruptions and default parameters (validation-set parameters for
  speckle noise, Gaussian blur and saturate); every corruption that needs no image asset (all but frost).
* ``medimeta-c``: the 7 ImageNet-C corruptions of MediMeta-C with ImageNet-C's parameters.
* ``medmnist-c/<flag>``: the per-dataset MedMNIST-C registry (``medmnistc`` 0.1.0), in its generation order,
  for all 12 2-D MedMNIST datasets.

Severity parameters are those of 224-px images; see :mod:`hf_robustmed.corruptions.registry` for how pixel
quantities scale to other sizes.

**Continuous intensity.** A float severity ``s`` in [1, 5] interpolates each operation's parameter between the
two neighbouring severities ``k = floor(s)`` and ``k + 1`` (weight ``t = s - k``), by the operation's rule in
:data:`INTERPOLATION` (tuples element by element): ``linear`` (``a + t·(b − a)``, as a float), ``round`` (the
linear value rounded half up to an integer: JPEG quality, counts, ink and bubble sizes, glass-blur displacement and
iterations, spatter's mud flag), ``odd`` (rounded half up to the nearest odd integer: Gaussian kernel sizes) and
``zoom`` (zoom-factor lists: their last factor and their step are interpolated linearly and the list regenerated as
``numpy.arange(1, last + step/2, step)``). An integral ``s = k`` gives exactly severity k's parameter, so exactly its
output. The path follows the table, so non-monotone tables (MedMNIST-C's black corner) stay non-monotone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SuiteEntry:
    """One corruption of a suite: the operation it runs and its parameter for severities 1..5."""

    op: str
    params: tuple

    def __post_init__(self) -> None:
        if len(self.params) != 5:
            raise ValueError(f"a suite entry needs 5 severity parameters, got {len(self.params)} for {self.op!r}")

    def param_at(self, severity: int | float) -> object:
        """The parameter at a validated severity: the table's entry for an int, else interpolated (module doc)."""
        if isinstance(severity, int):
            return self.params[severity - 1]
        low = int(severity)
        return interpolate_param(self.op, self.params[low - 1], self.params[low], severity - low)


@dataclass(frozen=True)
class Suite:
    """A named set of corruptions with their severity parameters.

    Attributes:
        name: Suite id, e.g. ``medmnist-c/bloodmnist``.
        description: One line for tables and dataset cards.
        corruptions: Public corruption name → :class:`SuiteEntry`, in generation order.
        rgb: For a dataset suite, whether the dataset's images are RGB (``None`` for generic suites).
    """

    name: str
    description: str
    corruptions: dict[str, SuiteEntry] = field(default_factory=dict)
    rgb: bool | None = None

    def entry(self, corruption: str) -> SuiteEntry:
        """The suite's entry for ``corruption``.

        Raises:
            ValueError: If the suite has no such corruption; the message names other suites that have it and
                lists the valid names.
        """
        try:
            return self.corruptions[corruption]
        except KeyError:
            raise ValueError(
                f"unknown corruption {corruption!r} for suite {self.name!r}{_found_in(corruption)}; "
                f"valid: {', '.join(self.corruptions)}"
            ) from None


def _found_in(corruption: str) -> str:
    """A hint naming (up to four of) the suites that have ``corruption``, or nothing."""
    elsewhere = [suite.name for suite in SUITES.values() if corruption in suite.corruptions]
    if not elsewhere:
        return ""
    return f" ({corruption!r} exists in: {', '.join(elsewhere[:4])}{' …' if len(elsewhere) > 4 else ''})"


def _zoom(stop: float, step: float) -> tuple[float, ...]:
    # numpy.arange exactly as ImageNet-C: float accumulation decides the list's length and values.
    return tuple(float(z) for z in np.arange(1, stop, step))


def _entries(**table: tuple[str, tuple]) -> dict[str, SuiteEntry]:
    return {name: SuiteEntry(op, tuple(params)) for name, (op, params) in table.items()}


IMAGENET_C_PARAMS: dict[str, SuiteEntry] = _entries(
    gaussian_noise=("gaussian_noise", (0.08, 0.12, 0.18, 0.26, 0.38)),
    shot_noise=("shot_noise", (60, 25, 12, 5, 3)),
    impulse_noise=("impulse_noise", (0.03, 0.06, 0.09, 0.17, 0.27)),
    speckle_noise=("speckle_noise", (0.15, 0.2, 0.35, 0.45, 0.6)),
    defocus_blur=("defocus_blur", ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))),
    glass_blur=("glass_blur", ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))),
    motion_blur=("motion_blur", ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))),
    zoom_blur=(
        "zoom_blur",
        (_zoom(1.11, 0.01), _zoom(1.16, 0.01), _zoom(1.21, 0.02), _zoom(1.26, 0.02), _zoom(1.31, 0.03)),
    ),
    gaussian_blur=("gaussian_blur", (1, 2, 3, 4, 6)),
    snow=(
        "snow",
        (
            (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
            (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
            (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
            (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
            (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
        ),
    ),
    fog=("fog", ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))),
    spatter=(
        "spatter",
        (
            (0.65, 0.3, 4, 0.69, 0.6, 0),
            (0.65, 0.3, 3, 0.68, 0.6, 0),
            (0.65, 0.3, 2, 0.68, 0.5, 0),
            (0.65, 0.3, 1, 0.65, 1.5, 1),
            (0.67, 0.4, 1, 0.65, 1.5, 1),
        ),
    ),
    brightness=("hsv_brightness", (0.1, 0.2, 0.3, 0.4, 0.5)),
    contrast=("contrast", (0.4, 0.3, 0.2, 0.1, 0.05)),
    saturate=("saturate", ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))),
    jpeg_compression=("jpeg_compression", (25, 18, 15, 10, 7)),
    pixelate=("pixelate", (0.6, 0.5, 0.4, 0.3, 0.25)),
    elastic_transform=("elastic_transform", tuple(250 * f for f in (0.05, 0.065, 0.085, 0.1, 0.12))),
)

MEDIMETA_C_CORRUPTIONS = (
    "brightness",
    "contrast",
    "gaussian_noise",
    "impulse_noise",
    "motion_blur",
    "pixelate",
    "zoom_blur",
)

# MedMNIST-C's corruption names → our operations.
_MEDMNIST_OPS = {
    "pixelate": "pixelate",
    "jpeg_compression": "jpeg_compression",
    "gaussian_noise": "gaussian_noise",
    "speckle_noise": "speckle_noise",
    "impulse_noise": "impulse_noise",
    "shot_noise": "shot_noise",
    "defocus_blur": "defocus_blur",
    "motion_blur": "motion_blur",
    "zoom_blur": "zoom_blur",
    "gaussian_blur": "gaussian_blur_kernel",
    "brightness_up": "pil_brightness",
    "brightness_down": "pil_brightness",
    "contrast_up": "pil_contrast",
    "contrast_down": "pil_contrast",
    "saturate": "saturate_shift",
    "gamma_corr_up": "gamma",
    "gamma_corr_down": "gamma",
    "stain_deposit": "stain_deposit",
    "bubble": "bubble",
    "black_corner": "black_corner",
    "characters": "characters",
}

_ORGAN = dict(
    pixelate=(0.7, 0.6, 0.5, 0.4, 0.35),
    jpeg_compression=(50, 30, 15, 10, 7),
    gaussian_noise=(0.04, 0.08, 0.12, 0.16, 0.20),
    speckle_noise=(0.05, 0.10, 0.20, 0.30, 0.40),
    impulse_noise=(0.01, 0.02, 0.03, 0.05, 0.08),
    shot_noise=(200, 100, 50, 25, 15),
    gaussian_blur=(11, 13, 15, 17, 21),
    brightness_up=(1.2, 1.3, 1.4, 1.5, 1.6),
    brightness_down=(0.8, 0.75, 0.7, 0.65, 0.60),
    contrast_up=(1.3, 1.4, 1.6, 1.7, 1.8),
    contrast_down=(0.8, 0.7, 0.6, 0.55, 0.5),
    gamma_corr_up=(1.3, 1.4, 1.6, 1.8, 2.0),
    gamma_corr_down=(0.9, 0.8, 0.7, 0.6, 0.4),
)

# medmnistc/corruptions/registry.py, severities 1..5 (6th entries, unused at test time, dropped). Stain deposits
# add the ink size: the reference uses its 24-px inks for severities 1–4 and the 32-px inks for severity 5.
MEDMNIST_C_PARAMS: dict[str, tuple[bool, dict[str, tuple]]] = {
    "pathmnist": (
        True,
        dict(
            pixelate=(0.8, 0.6, 0.40, 0.30, 0.25),
            jpeg_compression=(50, 30, 15, 10, 7),
            defocus_blur=((3, 0.1), (4, 0.1), (5, 0.2), (6, 0.2), (7, 0.3)),
            motion_blur=((5, 5), (10, 5), (15, 5), (15, 8), (15, 12)),
            brightness_up=(1.1, 1.15, 1.2, 1.22, 1.25),
            brightness_down=(0.85, 0.80, 0.75, 0.72, 0.70),
            contrast_up=(1.1, 1.2, 1.3, 1.4, 1.6),
            contrast_down=(0.8, 0.7, 0.6, 0.55, 0.5),
            saturate=(0.05, 0.10, 0.15, 0.20, 0.25),
            stain_deposit=((1, 24), (2, 24), (3, 24), (4, 24), (5, 32)),
            bubble=((7, 15), (10, 15), (12, 15), (15, 20), (17, 25)),
        ),
    ),
    "bloodmnist": (
        True,
        dict(
            pixelate=(0.6, 0.5, 0.40, 0.30, 0.25),
            jpeg_compression=(50, 30, 15, 10, 7),
            defocus_blur=((2, 0.01), (3, 0.1), (4, 0.1), (5, 0.1), (6, 0.1)),
            motion_blur=((3, 3), (5, 5), (10, 5), (10, 7), (10, 9)),
            brightness_up=(1.1, 1.2, 1.3, 1.35, 1.4),
            brightness_down=(0.9, 0.8, 0.7, 0.6, 0.5),
            contrast_up=(1.1, 1.15, 1.2, 1.25, 1.3),
            contrast_down=(0.9, 0.8, 0.7, 0.6, 0.5),
            saturate=(0.05, 0.10, 0.15, 0.17, 0.20),
            stain_deposit=((1, 24), (2, 24), (3, 24), (3, 24), (3, 32)),
            bubble=((5, 10), (7, 10), (10, 10), (12, 12), (15, 12)),
        ),
    ),
    "dermamnist": (
        True,
        dict(
            pixelate=(0.7, 0.5, 0.40, 0.30, 0.25),
            jpeg_compression=(30, 20, 15, 10, 7),
            gaussian_noise=(0.04, 0.08, 0.12, 0.18, 0.26),
            speckle_noise=(0.05, 0.15, 0.2, 0.35, 0.45),
            impulse_noise=(0.01, 0.03, 0.06, 0.09, 0.17),
            shot_noise=(60, 25, 18, 10, 5),
            defocus_blur=((4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5)),
            motion_blur=((10, 5), (15, 5), (15, 8), (15, 12), (20, 15)),
            zoom_blur=IMAGENET_C_PARAMS["zoom_blur"].params,
            brightness_up=(1.1, 1.2, 1.3, 1.4, 1.5),
            brightness_down=(0.9, 0.8, 0.7, 0.6, 0.5),
            contrast_up=(1.1, 1.2, 1.3, 1.4, 1.6),
            contrast_down=(0.8, 0.7, 0.6, 0.5, 0.4),
            black_corner=(1.10, 1.05, 1.00, 0.90, 0.95),
            characters=((1, 6, 0.14), (2, 7, 0.15), (3, 8, 0.16), (4, 9, 0.17), (6, 10, 0.18)),
        ),
    ),
    "retinamnist": (
        True,
        dict(
            pixelate=(0.8, 0.60, 0.50, 0.40, 0.35),
            jpeg_compression=(30, 25, 20, 10, 5),
            gaussian_noise=(0.04, 0.08, 0.12, 0.16, 0.20),
            speckle_noise=(0.10, 0.15, 0.20, 0.25, 0.30),
            defocus_blur=((4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5)),
            motion_blur=((8, 5), (15, 5), (15, 8), (15, 12), (20, 15)),
            brightness_down=(0.9, 0.8, 0.7, 0.6, 0.5),
            contrast_down=(0.9, 0.8, 0.7, 0.6, 0.4),
        ),
    ),
    "tissuemnist": (
        False,
        dict(
            pixelate=(0.40, 0.30, 0.20, 0.15, 0.10),
            jpeg_compression=(25, 20, 15, 10, 7),
            impulse_noise=(0.01, 0.015, 0.02, 0.025, 0.03),
            gaussian_blur=(13, 15, 17, 21, 25),
            brightness_up=(1.3, 1.4, 1.5, 1.6, 1.7),
            brightness_down=(0.8, 0.7, 0.6, 0.5, 0.4),
            contrast_up=(1.1, 1.2, 1.3, 1.4, 1.6),
            contrast_down=(0.9, 0.8, 0.7, 0.6, 0.4),
        ),
    ),
    "octmnist": (
        False,
        dict(
            pixelate=(0.30, 0.25, 0.20, 0.15, 0.10),
            jpeg_compression=(30, 15, 10, 7, 5),
            speckle_noise=(0.15, 0.30, 0.40, 0.50, 0.60),
            defocus_blur=((0.5, 0.6), (1, 0.5), (1.5, 0.1), (2.0, 0.5), (2.5, 0.1)),
            motion_blur=((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
            contrast_down=(0.6, 0.4, 0.3, 0.2, 0.15),
        ),
    ),
    "breastmnist": (
        False,
        dict(
            pixelate=(0.30, 0.25, 0.20, 0.15, 0.10),
            jpeg_compression=(50, 30, 15, 10, 7),
            speckle_noise=(0.10, 0.15, 0.20, 0.25, 0.30),
            motion_blur=((5, 5), (9, 7), (9, 10), (13, 10), (17, 12)),
            brightness_up=(1.4, 1.5, 1.6, 1.8, 2.0),
            brightness_down=(0.55, 0.5, 0.45, 0.4, 0.3),
            contrast_down=(0.9, 0.8, 0.7, 0.6, 0.4),
        ),
    ),
    "chestmnist": (
        False,
        dict(
            pixelate=(0.30, 0.25, 0.20, 0.15, 0.10),
            jpeg_compression=(50, 30, 15, 10, 7),
            gaussian_noise=(0.04, 0.08, 0.12, 0.18, 0.26),
            speckle_noise=(0.05, 0.15, 0.2, 0.35, 0.45),
            impulse_noise=(0.01, 0.03, 0.06, 0.09, 0.17),
            shot_noise=(60, 25, 18, 10, 5),
            gaussian_blur=(3, 5, 7, 9, 11),
            brightness_up=(1.1, 1.2, 1.3, 1.4, 1.5),
            brightness_down=(0.9, 0.8, 0.7, 0.6, 0.5),
            contrast_up=(1.1, 1.2, 1.3, 1.4, 1.6),
            contrast_down=(0.9, 0.8, 0.7, 0.6, 0.4),
            gamma_corr_up=(1.1, 1.2, 1.3, 1.4, 1.6),
            gamma_corr_down=(0.9, 0.8, 0.7, 0.6, 0.4),
        ),
    ),
    "pneumoniamnist": (
        False,
        dict(
            pixelate=(0.8, 0.7, 0.6, 0.5, 0.40),
            jpeg_compression=(50, 30, 15, 10, 7),
            gaussian_noise=(0.04, 0.05, 0.06, 0.07, 0.08),
            speckle_noise=(0.05, 0.07, 0.10, 0.15, 0.20),
            impulse_noise=(0.005, 0.01, 0.013, 0.017, 0.02),
            shot_noise=(300, 200, 150, 100, 80),
            gaussian_blur=(3, 5, 7, 9, 11),
            brightness_up=(1.1, 1.2, 1.3, 1.4, 1.5),
            brightness_down=(0.9, 0.8, 0.7, 0.6, 0.5),
            contrast_up=(1.1, 1.2, 1.3, 1.4, 1.6),
            contrast_down=(0.9, 0.8, 0.7, 0.6, 0.4),
            gamma_corr_up=(1.1, 1.2, 1.3, 1.4, 1.6),
            gamma_corr_down=(0.9, 0.8, 0.7, 0.6, 0.4),
        ),
    ),
    "organamnist": (False, _ORGAN),
    "organcmnist": (False, _ORGAN),
    "organsmnist": (False, _ORGAN),
}

MEDMNIST_DATASETS = tuple(MEDMNIST_C_PARAMS)


def _build_suites() -> dict[str, Suite]:
    suites = {
        "imagenet-c": Suite(
            "imagenet-c",
            "ImageNet-C corruptions and default parameters (Hendrycks & Dietterich 2019); all but frost",
            dict(IMAGENET_C_PARAMS),
        ),
        "medimeta-c": Suite(
            "medimeta-c",
            "MediMeta-C: 7 ImageNet-C corruptions with ImageNet-C parameters (Imam et al. 2025)",
            {name: IMAGENET_C_PARAMS[name] for name in MEDIMETA_C_CORRUPTIONS},
        ),
    }
    for flag, (rgb, table) in MEDMNIST_C_PARAMS.items():
        entries = {name: SuiteEntry(_MEDMNIST_OPS[name], tuple(params)) for name, params in table.items()}
        suites[f"medmnist-c/{flag}"] = Suite(
            f"medmnist-c/{flag}",
            f"MedMNIST-C parameters for {flag} (Di Salvo et al. 2024)",
            entries,
            rgb=rgb,
        )
    return suites


SUITES: dict[str, Suite] = _build_suites()

# How each operation's parameter is interpolated between two severities (see the module docstring); a tuple gives
# the rule of each element of a tuple parameter.
INTERPOLATION: dict[str, str | tuple[str, ...]] = {
    "gaussian_noise": "linear",
    "speckle_noise": "linear",
    "shot_noise": "linear",
    "impulse_noise": "linear",
    "pixelate": "linear",
    "jpeg_compression": "round",
    "elastic_transform": "linear",
    "defocus_blur": ("linear", "linear"),
    "motion_blur": ("linear", "linear"),
    "zoom_blur": "zoom",
    "gaussian_blur": "linear",
    "gaussian_blur_kernel": "odd",
    "glass_blur": ("linear", "round", "round"),
    "pil_brightness": "linear",
    "pil_contrast": "linear",
    "gamma": "linear",
    "saturate_shift": "linear",
    "saturate": ("linear", "linear"),
    "hsv_brightness": "linear",
    "contrast": "linear",
    "stain_deposit": ("round", "round"),
    "bubble": ("round", "round"),
    "black_corner": "linear",
    "characters": ("round", "round", "linear"),
    "fog": ("linear", "linear"),
    "snow": ("linear",) * 7,
    "spatter": ("linear",) * 5 + ("round",),
}


def _between(rule: str, low: object, high: object, t: float) -> object:
    if rule == "zoom":
        last = low[-1] + t * (high[-1] - low[-1])
        step = (low[1] - low[0]) + t * ((high[1] - high[0]) - (low[1] - low[0]))
        return tuple(float(z) for z in np.arange(1, last + step / 2, step))
    value = float(low) + t * (float(high) - float(low))
    if rule == "linear":
        return value
    if rule == "round":
        return int(math.floor(value + 0.5))
    if rule == "odd":
        return 2 * int(math.floor((value - 1) / 2 + 0.5)) + 1
    raise ValueError(f"unknown interpolation rule {rule!r}")


def interpolate_param(op: str, low: object, high: object, t: float) -> object:
    """The parameter of operation ``op`` a fraction ``t`` in [0, 1) of the way from ``low`` to ``high``.

    Raises:
        ValueError: If ``op`` has no interpolation rule in :data:`INTERPOLATION`.
    """
    if t == 0:
        return low
    try:
        rule = INTERPOLATION[op]
    except KeyError:
        raise ValueError(f"operation {op!r} has no interpolation rule: it supports integer severities only") from None
    if isinstance(rule, tuple):
        return tuple(_between(r, a, b, t) for r, a, b in zip(rule, low, high, strict=True))
    return _between(rule, low, high, t)


DEFAULT_SUITE = "imagenet-c"


def get_suite(name: str | None) -> Suite:
    """The suite called ``name`` (``None`` means ImageNet-C's defaults).

    Raises:
        ValueError: If no suite has that name; the message lists the valid ones.
    """
    key = DEFAULT_SUITE if name is None else str(name).lower()
    if key == "medmnist-c":
        raise ValueError(
            "MedMNIST-C parameters differ per dataset: use 'medmnist-c/<dataset>', one of "
            + ", ".join(f"medmnist-c/{flag}" for flag in MEDMNIST_DATASETS)
        )
    try:
        return SUITES[key]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; valid suites: {', '.join(SUITES)}") from None
