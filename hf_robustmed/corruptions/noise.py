"""Noise corruptions: Gaussian, speckle, shot (Poisson) and impulse (salt and pepper).

All draw independent noise per pixel *and channel*, as ImageNet-C and MedMNIST-C do, so they are not
grey-native: a grey image is replicated to RGB, corrupted and converted back with PIL luma, which averages the
three channels' noise (effective σ ≈ 0.668·σ).

The reference computes ``Q(f(x, noise))`` in floating point, with the truncating quantisation ``Q``. The output
grey level then has a law that depends only on the input level, which we tabulate once per parameter and sample
exactly with one 32-bit uniform per element (:mod:`._sampling`), e.g. for Gaussian noise
``P(out ≤ k | v) = Φ((k + 1 − v) / 255σ)``. Same law as drawing the normals, several times faster.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ._sampling import DiscreteLaw, uniform_u32
from .registry import register_op

_LEVELS = np.arange(256, dtype=np.float64)
_normal_cdf = np.frompyfunc(lambda z: 0.5 * math.erfc(-z / math.sqrt(2.0)), 1, 1)


def _phi(z: np.ndarray) -> np.ndarray:
    return _normal_cdf(z).astype(np.float64)


@lru_cache(maxsize=128)
def _gaussian_offset_law(sigma: float) -> DiscreteLaw:
    # out = floor(clip(v + 255σn, 0, 255)) = clip(v + D, 0, 255) with D = floor(255σn), because v is an integer
    # and the clip bounds are integers. D's law does not depend on v: one row, P(D ≤ d) = Φ((d + 1) / 255σ),
    # for d in −255..255 (beyond that the clip decides anyway).
    offsets = np.arange(-255, 256, dtype=np.float64)
    cdf = _phi((offsets + 1) / (255.0 * sigma))
    return DiscreteLaw.from_cdf(cdf[None, :])


@lru_cache(maxsize=128)
def _speckle_law(sigma: float) -> DiscreteLaw:
    # out = floor(clip(v·(1 + σn), 0, 255)); a black pixel stays black.
    v = np.maximum(_LEVELS[:, None], 1e-300)
    cdf = _phi(((_LEVELS[None, :] + 1) / v - 1) / sigma)
    cdf[0] = 1.0
    return DiscreteLaw.from_cdf(cdf)


@lru_cache(maxsize=128)
def _shot_law(photons: float) -> DiscreteLaw:
    # out = floor(min(N / c, 1)·255) with N ~ Poisson(v/255 · c). Counts N ≥ c are all white, so the support is
    # cut at K = ceil(c) with the tail's mass lumped there.
    top = max(1, math.ceil(photons))
    k = np.arange(top + 1, dtype=np.float64)
    lam = _LEVELS[:, None] * (photons / 255.0)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top + 1)))])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = np.where(lam > 0, k * np.log(lam) - lam - log_factorial, np.where(k == 0, 0.0, -np.inf))
    values = np.floor(np.clip(k / photons, 0, 1) * 255)
    return DiscreteLaw.from_cdf(np.cumsum(np.exp(log_pmf), axis=1), values)


@register_op(
    "gaussian_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="σ of the additive noise, image in [0, 1]",
    ancestor="ImageNet-C / MedMNIST-C: Q(x + n), n ~ N(0, σ²)",
)
def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    offsets = _gaussian_offset_law(float(sigma)).sample_shared(image.shape, rng).astype(np.int16)
    offsets += image
    offsets -= 255
    return np.clip(offsets, 0, 255, out=offsets).astype(np.uint8)


@register_op(
    "speckle_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="σ of the multiplicative noise",
    ancestor="ImageNet-C / MedMNIST-C: Q(x + x·n), n ~ N(0, σ²)",
)
def speckle_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    return _speckle_law(float(sigma)).sample(image, rng)


@register_op(
    "shot_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="photon count c (smaller is stronger)",
    ancestor="ImageNet-C / MedMNIST-C: Q(Poisson(x·c) / c)",
)
def shot_noise(image: np.ndarray, photons: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    return _shot_law(float(photons)).sample(image, rng)


@register_op(
    "impulse_noise",
    category="noise",
    random=True,
    grey_native=False,
    param_doc="fraction a of elements replaced by salt (255) or pepper (0), half each",
    ancestor="ImageNet-C / MedMNIST-C via scikit-image random_noise(mode='s&p', salt_vs_pepper=0.5)",
)
def impulse_noise(image: np.ndarray, amount: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    # scikit-image flips each element with probability a and makes a flipped one salt with probability 1/2:
    # with one uniform u, u < a/2 is pepper, a/2 ≤ u < a is salt.
    u = uniform_u32(rng, image.size).reshape(image.shape)
    flipped_at, pepper_below = np.uint32(min(amount, 1.0) * (2**32 - 1)), np.uint32(min(amount, 1.0) * 2**31)
    out = image.copy()
    np.putmask(out, u < flipped_at, 255)
    np.putmask(out, u < pepper_below, 0)
    return out
