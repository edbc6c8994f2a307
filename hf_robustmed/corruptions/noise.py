"""Noise corruptions: Gaussian, speckle, shot (Poisson) and impulse (salt and pepper).

All draw independent noise per pixel *and channel*, as ImageNet-C and MedMNIST-C do, so they are not
channel-wise: a grey image is replicated to RGB, corrupted and converted back with PIL luma, which averages the
three channels' noise (effective σ ≈ 0.668·σ). The arithmetic is in float32 grey levels; the quantisation is the
references' truncation.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ._common import quantize, to_float
from .registry import register_op


@register_op(
    "gaussian_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="σ of the additive noise, image in [0, 1]",
    ancestor="ImageNet-C / MedMNIST-C: Q(x + n), n ~ N(0, σ²)",
)
def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(255.0 * sigma)
    noise += image
    return quantize(noise)


@register_op(
    "speckle_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="σ of the multiplicative noise",
    ancestor="ImageNet-C / MedMNIST-C: Q(x + x·n), n ~ N(0, σ²)",
)
def speckle_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    x = to_float(image)
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(sigma)
    noise += np.float32(1.0)
    noise *= x
    return quantize(noise)


GUIDE_SIZE = 512


@lru_cache(maxsize=64)
def _shot_noise_tables(photons: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Inverse-CDF tables of ``Poisson(v/255 · c)`` for the 256 grey levels v, truncated where ``k ≥ c``.

    Counts ``k ≥ c`` all give white after clipping, so the support is cut at ``K = ceil(c)`` with the tail's
    mass lumped there: the sampled output has exactly the law of ``Q(Poisson(x·c) / c)``.

    Returns:
        cdf: ``256 × (K+1)`` float64, ``cdf[v, k] = P(N ≤ k)``, last column 1.
        guide: ``256 × GUIDE_SIZE`` int, ``guide[v, j] = min{k : cdf[v, k] ≥ j / GUIDE_SIZE}`` (a Chen–Asau
            guide table: the search for ``u`` starts there and rarely moves).
        values: ``K+1`` uint8, the output grey level of count k, ``floor(min(k/c, 1) · 255)``.
        top: K.
    """
    top = max(1, math.ceil(photons))
    k = np.arange(top + 1, dtype=np.float64)
    lam = np.arange(256, dtype=np.float64)[:, None] * (photons / 255.0)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top + 1)))])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = np.where(lam > 0, k * np.log(lam) - lam - log_factorial, np.where(k == 0, 0.0, -np.inf))
    cdf = np.cumsum(np.exp(log_pmf), axis=1)
    cdf[:, -1] = 1.0
    targets = np.arange(GUIDE_SIZE, dtype=np.float64) / GUIDE_SIZE
    guide = np.stack([np.searchsorted(row, targets, side="left") for row in cdf])
    values = np.floor(np.minimum(k / photons, 1.0) * 255.0).astype(np.uint8)
    return cdf, guide, values, top


@register_op(
    "shot_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="photon count c (smaller is stronger)",
    ancestor="ImageNet-C / MedMNIST-C: Q(Poisson(x·c) / c)",
)
def shot_noise(image: np.ndarray, photons: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    # Inversion sampling with one uniform per element, from cached per-grey-level tables: about 4× faster
    # than numpy's Poisson sampler, with the same law.
    cdf, guide, values, top = _shot_noise_tables(float(photons))
    cdf_flat, guide_flat = cdf.ravel(), guide.ravel()
    grey = image.reshape(-1).astype(np.intp)
    u = rng.random(grey.size)
    k = guide_flat[grey * GUIDE_SIZE + (u * GUIDE_SIZE).astype(np.intp)]
    row = grey * cdf.shape[1]
    pending = np.flatnonzero(cdf_flat[row + k] < u)
    while pending.size:
        k[pending] += 1
        pending = pending[cdf_flat[row[pending] + k[pending]] < u[pending]]
    return values[k].reshape(image.shape)


@register_op(
    "impulse_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="fraction a of elements replaced by salt (255) or pepper (0), half each",
    ancestor="ImageNet-C / MedMNIST-C via scikit-image random_noise(mode='s&p', salt_vs_pepper=0.5)",
)
def impulse_noise(image: np.ndarray, amount: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    # Law of scikit-image's s&p: each element is flipped with probability `amount`; a flipped element is salt
    # with probability 1/2. Drawing the salt/pepper coin only for flipped elements gives the same law.
    out = image.copy()
    flipped = np.flatnonzero(rng.random(image.size, dtype=np.float32) <= np.float32(amount))
    salt = rng.random(flipped.size, dtype=np.float32) <= np.float32(0.5)
    flat = out.reshape(-1)
    flat[flipped] = np.where(salt, 255, 0).astype(np.uint8)
    return out
