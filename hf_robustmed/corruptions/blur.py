"""Blur corruptions: defocus, motion, zoom, Gaussian (two parameterisations) and glass blur.

Parameters in pixels (radii, σ, kernel sizes) are those of 224-px images and are multiplied by ``scale``
(:func:`~hf_robustmed.corruptions.registry.length_scale`) for other sizes; at 224 px the operations are the
references' own.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from . import _kernels
from ._common import quantize, to_float
from .filters import clipped_zoom, gaussian_sigma, imagemagick_q16_to_8bit, line_filter, motion_taps, zoom_plan
from .registry import register_op


@lru_cache(maxsize=256)
def _aliased_disk(radius: float, alias_sigma: float, exact: bool = True) -> np.ndarray:
    """ImageNet-C's anti-aliased disk kernel, cropped to its support (which does not change the result).

    With ``exact`` the disk is ImageNet-C's binary one (pixel centres inside the circle). Otherwise, for
    rescaled radii, each pixel is weighted by the fraction of it the disk covers (8×8 supersampling), so that
    the kernel changes continuously with the radius, also below one pixel.
    """
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        half = int(radius)
        grid, ksize = np.arange(-half, half + 1), (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    if exact:
        disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    else:
        sub = (np.arange(8) + 0.5) / 8 - 0.5
        sx, sy = np.meshgrid(sub, sub)
        inside = ((xx[..., None, None] + sx) ** 2 + (yy[..., None, None] + sy) ** 2) <= radius**2
        disk = inside.mean(axis=(2, 3)).astype(np.float32)
        disk[len(grid) // 2, len(grid) // 2] = max(disk[len(grid) // 2, len(grid) // 2], 1e-3)
    disk /= np.sum(disk)
    kernel = cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_sigma)
    # A small anti-alias σ leaves weights below float32's normal range (e^−100 at σ 0.1): they cannot move a sum
    # of grey levels by a representable amount, but each product with them takes the CPU's slow denormal path.
    kernel[kernel < np.finfo(np.float32).tiny] = 0
    rows = np.flatnonzero(kernel.any(axis=1))
    cols = np.flatnonzero(kernel.any(axis=0))
    # Keep the kernel centred: crop symmetrically.
    centre = len(grid) // 2
    half = max(centre - min(rows[0], cols[0]), max(rows[-1], cols[-1]) - centre)
    return np.ascontiguousarray(kernel[centre - half : centre + half + 1, centre - half : centre + half + 1])


@register_op(
    "defocus_blur",
    category="blur",
    random=False,
    grey_native=True,
    param_doc="(disk radius px, anti-alias σ px)",
    ancestor="ImageNet-C / MedMNIST-C disk kernel, OpenCV filter2D with reflect-101 borders",
)
def defocus_blur(image: np.ndarray, param: tuple[float, float], rng: None, scale: float) -> np.ndarray:
    radius, alias = param
    kernel = _aliased_disk(float(radius) * scale, float(alias) * scale, exact=scale == 1.0)
    # In [0, 1] like the reference, so that truncation mostly lands on the same grey levels.
    out = cv2.filter2D(image.astype(np.float32) * np.float32(1 / 255), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return quantize(out.reshape(image.shape), top=1.0)


@register_op(
    "motion_blur",
    category="blur",
    random=True,
    grey_native=True,
    param_doc="(ImageMagick radius px, σ px); angle θ ~ U(−45°, 45°) per image",
    ancestor="ImageNet-C / MedMNIST-C through ImageMagick MotionBlurImage (edge virtual pixels)",
)
def motion_blur(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator, scale: float) -> np.ndarray:
    radius, sigma = param
    angle = float(rng.uniform(-45.0, 45.0))
    return motion_blur_at(image, float(radius) * scale, float(sigma) * scale, angle)


def motion_blur_at(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's ``MotionBlurImage(radius, sigma, angle)`` of an H×W×C uint8 image (edge pixels repeated)."""
    levels = line_filter(image, motion_taps(radius, sigma, angle))
    return imagemagick_q16_to_8bit(levels).reshape(image.shape)


@lru_cache(maxsize=64)
def _stacked_zoom_plans(height: int, width: int, zooms: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """The plans of several zoom factors, stacked for the compiled loop ``_kernels._zoom_sum``.

    Returns:
        Crop tops, lefts and widths (one per factor), then the row plans' source indices (lo, hi) and weights,
        then the column plans' (one row per factor).
    """
    plans = [zoom_plan(height, width, zoom) for zoom in zooms]
    tops = np.array([rows[0].start for rows, _ in plans])
    lefts = np.array([cols[0].start for _, cols in plans])
    widths = np.array([cols[0].stop - cols[0].start for _, cols in plans])
    stacked = [np.stack([axis[k] for axis, _ in plans]) for k in (1, 2, 3)]
    stacked += [np.stack([axis[k] for _, axis in plans]) for k in (1, 2, 3)]
    return (tops, lefts, widths, *stacked)


# float32(v / 255) for every grey level v: the reference's ``np.array(img) / 255.`` cast to float32.
_UNIT_FLOAT32 = (np.arange(256) / 255.0).astype(np.float32)


@register_op(
    "zoom_blur",
    category="blur",
    random=False,
    grey_native=True,
    param_doc="zoom factors (numpy.arange(1, stop, step))",
    ancestor="ImageNet-C clipped_zoom with SciPy ndimage.zoom(order=1); generalised to non-square images",
)
def zoom_blur(image: np.ndarray, factors: tuple[float, ...], rng: None, scale: float) -> np.ndarray:
    # float32 in [0, 1] like the reference, so that truncation lands on the same grey levels.
    # Planar (C×H×W) so that the gathers run over contiguous rows.
    planes = np.ascontiguousarray(cv2.LUT(image, _UNIT_FLOAT32).reshape(image.shape).transpose(2, 0, 1))
    # The first factor is 1, whose clipped zoom is the plane itself (weights 0): each sum starts from a copy.
    starts_at_one = factors[0] == 1.0
    out = planes.copy() if starts_at_one else np.zeros_like(planes)
    zooms = tuple(float(zoom) for zoom in factors[int(starts_at_one) :])
    zoom_sum = _kernels.compiled("zoom_sum")
    for channel, plane in enumerate(planes):
        if zoom_sum is not None and zooms:
            acc_t = np.ascontiguousarray(out[channel].T)
            work_t = np.empty_like(acc_t)
            zoom_sum(acc_t, plane, *_stacked_zoom_plans(*plane.shape, zooms), work_t)
            out[channel] = acc_t.T
        else:
            for zoom in zooms:
                out[channel] += clipped_zoom(plane, zoom)
    out += planes
    out /= np.float32(len(factors) + 1)
    return quantize(out.transpose(1, 2, 0), top=1.0)


@lru_cache(maxsize=64)
def _torchvision_kernel(ksize: int, sigma: float) -> np.ndarray:
    half = (ksize - 1) * 0.5
    x = np.linspace(-half, half, ksize, dtype=np.float32)
    pdf = np.exp(-0.5 * (x / np.float32(sigma)) ** 2)
    return (pdf / pdf.sum()).astype(np.float32)


@register_op(
    "gaussian_blur_kernel",
    category="blur",
    random=False,
    grey_native=True,
    param_doc="odd kernel size k px; σ = 0.15·k + 0.35",
    ancestor="MedMNIST-C through torchvision gaussian_blur (reflect borders, rounded)",
)
def gaussian_blur_kernel(image: np.ndarray, ksize: int, rng: None, scale: float) -> np.ndarray:
    sigma = (0.15 * ksize + 0.35) * scale
    if scale != 1.0:  # the same σ-to-support ratio as torchvision's default (half-width ≈ 3σ)
        ksize = 2 * max(1, math.ceil(3 * sigma)) + 1
    kernel = _torchvision_kernel(int(ksize), float(sigma))
    out = cv2.sepFilter2D(to_float(image), -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    return np.rint(out, out=out).clip(0, 255).astype(np.uint8).reshape(image.shape)


@register_op(
    "gaussian_blur",
    category="blur",
    random=False,
    grey_native=True,
    param_doc="σ px",
    ancestor="ImageNet-C: scikit-image gaussian (truncate 4, nearest borders)",
)
def gaussian_blur(image: np.ndarray, sigma: float, rng: None, scale: float) -> np.ndarray:
    out = gaussian_sigma(to_float(image), float(sigma) * scale)
    return quantize(out.reshape(image.shape))


@register_op(
    "glass_blur",
    category="blur",
    random=True,
    grey_native=False,
    param_doc="(σ px, max displacement px, iterations)",
    ancestor="ImageNet-C: Gaussian blur, local pixel shuffling, Gaussian blur",
)
def glass_blur(image: np.ndarray, param: tuple[float, int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    sigma, delta, iterations = param
    sigma = float(sigma) * scale
    blurred = quantize(gaussian_sigma(to_float(image), sigma))
    height, width = image.shape[:2]
    # ImageNet-C walks rows h = H−δ … δ+1 and columns likewise, bottom-up and right-to-left, swapping each pixel
    # with a neighbour displaced by (dx, dy) ~ U{−δ, …, δ−1}². Swaps read pixels already moved, so the walk is
    # sequential; it runs on an index permutation (compiled with numba when installed, else a Python loop on a
    # list) and the image is permuted once at the end. At other sizes the displacement δ' = δ·scale is not an
    # integer: offsets are then U(−δ', δ') stochastically rounded (floor of u + U(0, 1)), whose spread grows
    # continuously with δ'.
    exact = scale == 1.0
    margin = int(delta) if exact else math.ceil(delta * scale) + 1
    ys = np.arange(height - margin - (0 if exact else 1), margin, -1)
    xs = np.arange(width - margin - (0 if exact else 1), margin, -1)
    src = (ys[:, None] * width + xs[None, :]).ravel()
    walk = []
    for _ in range(int(iterations)):
        if exact:
            # int32 draws are those of the default int64 (both take 32-bit bounded draws), at half the cost.
            shifts = rng.integers(-margin, margin, size=(src.size, 2), dtype=np.int32)
        else:
            spread = rng.uniform(-delta * scale, delta * scale, size=(src.size, 2))
            shifts = np.floor(spread + rng.random((src.size, 2))).astype(np.intp)
        walk.append(shifts)
    shuffled = np.take(blurred.reshape(height * width, -1), _swap_walk(height, width, src, walk), axis=0)
    shuffled = shuffled.reshape(image.shape)
    return quantize(gaussian_sigma(to_float(shuffled), sigma).reshape(image.shape))


def _swap_walk(height: int, width: int, src: np.ndarray, walk: list[np.ndarray]) -> np.ndarray:
    """The permutation of the H·W pixel indices left by ImageNet-C's swaps, walk after walk.

    Each walk swaps entry ``src[i]`` with entry ``src[i] + dy·W + dx`` for i = 0, 1, … in turn, where
    ``(dx, dy)`` is row i of the walk's offsets.
    """
    compiled = _kernels.compiled("swap_walk")
    if compiled is not None:
        perm = np.arange(height * width)
        for shifts in walk:
            compiled(perm, src, shifts, width)
        return perm
    order = list(range(height * width))
    for shifts in walk:
        dst = src + shifts[:, 1] * width + shifts[:, 0]
        moved = dst != src  # a pixel swapped with itself stays: skip those swaps (a quarter of them at δ = 1)
        for s, d in zip(src[moved].tolist(), dst[moved].tolist(), strict=True):
            order[s], order[d] = order[d], order[s]
    return np.fromiter(order, np.intp, height * width)
