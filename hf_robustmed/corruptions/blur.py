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

from ._common import quantize, to_float
from .registry import register_op


@lru_cache(maxsize=256)
def _aliased_disk(radius: float, alias_sigma: float, exact: bool = True) -> np.ndarray:
    """ImageNet-C's anti-aliased disk kernel, cropped to its non-zero support (which does not change the result).

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


@lru_cache(maxsize=256)
def _motion_taps(radius: float, sigma: float, angle_deg: float) -> tuple[tuple[int, int, float], ...]:
    """ImageMagick's MotionBlurImage kernel as (dy, dx, weight) taps, duplicates merged.

    ImageMagick samples ``width = 2·ceil(radius) + 1`` pixels along the direction ``angle``, at offsets
    ``(ceil(i·sin θ − ½), ceil(i·cos θ − ½))`` with one-sided Gaussian weights ``exp(−i² / 2σ²)``, normalised.
    """
    width = 2 * math.ceil(radius) + 1 if radius > 0 else 3
    sigma = max(sigma, 1e-6)
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i * i) / (2.0 * sigma * sigma))
    weights /= weights.sum()
    theta = math.radians(angle_deg)
    dx = np.ceil(i * math.cos(theta) - 0.5).astype(int)
    dy = np.ceil(i * math.sin(theta) - 0.5).astype(int)
    merged: dict[tuple[int, int], float] = {}
    for y, x, w in zip(dy.tolist(), dx.tolist(), weights.tolist()):
        merged[(y, x)] = merged.get((y, x), 0.0) + w
    return tuple((y, x, w) for (y, x), w in merged.items())


def _motion_kernel(radius: float, sigma: float, angle_deg: float) -> tuple[np.ndarray, int]:
    """The taps laid out as a centred 2-D correlation kernel, and its half size (for inspection and tests)."""
    taps = _motion_taps(radius, sigma, angle_deg)
    half = max(max(abs(y), abs(x)) for y, x, _ in taps)
    kernel = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float32)
    for y, x, w in taps:
        kernel[y + half, x + half] += w
    return kernel, half


def _apply_taps(plane: np.ndarray, taps: tuple[tuple[int, int, float], ...]) -> np.ndarray:
    """``Σ w · plane(y + dy, x + dx)`` with edge pixels repeated, as a few in-place scaled adds."""
    height, width = plane.shape[:2]
    margin = max(max(abs(y), abs(x)) for y, x, _ in taps)
    padded = cv2.copyMakeBorder(plane, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    # float32: its rounding error (< 10⁻³ grey levels) flips the final 8-bit level only at rare boundaries.
    padded = padded.reshape(height + 2 * margin, width + 2 * margin, -1).astype(np.float32)
    out = np.zeros((height, width, padded.shape[2]), np.float32)
    for y, x, w in taps:
        window = padded[margin + y : margin + y + height, margin + x : margin + x + width]
        cv2.scaleAdd(window, w, out, dst=out)
    return out


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
    # The kernel is a line of at most 41 taps in a square of up to 81², so summing shifted copies beats filter2D.
    out = _apply_taps(image, _motion_taps(radius, sigma, angle))
    return _imagemagick_q16_to_8bit(out).reshape(image.shape)


def _imagemagick_q16_to_8bit(levels: np.ndarray) -> np.ndarray:
    """ImageMagick Q16's output path: the 16-bit quantum ``round(257·s)``, written to 8 bits as ``q // 257``.

    Reproduces ImageMagick 6.9 (Debian's Q16 build) bit for bit on our test images; plain truncation of ``s``
    agrees on 97–99.8 % of pixels, rounding on about half.
    """
    quantum = np.floor(np.clip(levels, 0.0, 255.0, out=levels) * np.float32(257.0) + np.float32(0.5))
    return (quantum // np.float32(257)).astype(np.uint8)


def _zoom_axis(length: int, zoom: float) -> tuple[slice, np.ndarray, np.ndarray, np.ndarray]:
    """Sampling of one axis by ImageNet-C's ``clipped_zoom``.

    The centred crop of ``ceil(length / zoom)`` pixels is zoomed with SciPy ``ndimage.zoom(order=1)``, whose
    output pixel ``o`` samples input coordinate ``o·(n_in − 1)/(n_out − 1)``, and the result is centre-cropped
    back to ``length``. Returns the crop and, for every kept output pixel, the two source indices and the weight.
    """
    crop = math.ceil(length / zoom)
    start = (length - crop) // 2
    zoomed = int(round(crop * zoom))
    trim = (zoomed - length) // 2
    out = np.arange(trim, trim + length, dtype=np.float64)
    step = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    coord = out * step
    lo = np.clip(np.floor(coord).astype(np.intp), 0, crop - 1)
    hi = np.minimum(lo + 1, crop - 1)
    weight = (coord - lo).astype(np.float32)
    return slice(start, start + crop), lo, hi, weight


@lru_cache(maxsize=512)
def _zoom_plan(height: int, width: int, zoom: float) -> tuple:
    return _zoom_axis(height, zoom), _zoom_axis(width, zoom)


def _clipped_zoom(plane: np.ndarray, zoom: float) -> np.ndarray:
    """ImageNet-C's ``clipped_zoom`` of one H×W float32 plane (bilinear, separable: rows, then columns)."""
    (rows, r_lo, r_hi, r_w), (cols, c_lo, c_hi, c_w) = _zoom_plan(plane.shape[0], plane.shape[1], zoom)
    crop = plane[rows, cols]
    top, bottom = crop[r_lo], crop[r_hi]
    bottom -= top
    bottom *= r_w[:, None]
    bottom += top
    left, right = bottom[:, c_lo], bottom[:, c_hi]
    right -= left
    right *= c_w[None, :]
    right += left
    return right


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
    planes = np.ascontiguousarray((image / 255.0).astype(np.float32).transpose(2, 0, 1))
    out = np.zeros_like(planes)
    for channel, plane in enumerate(planes):
        for zoom in factors:
            out[channel] += _clipped_zoom(plane, float(zoom))
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


def _gaussian_sigma(x: np.ndarray, sigma: float, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """scikit-image ``gaussian(truncate=4, mode='nearest')`` with OpenCV."""
    radius = max(1, int(4.0 * sigma + 0.5))
    return cv2.GaussianBlur(x, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, sigmaY=sigma, borderType=border)


@register_op(
    "gaussian_blur",
    category="blur",
    random=False,
    grey_native=True,
    param_doc="σ px",
    ancestor="ImageNet-C: scikit-image gaussian (truncate 4, nearest borders)",
)
def gaussian_blur(image: np.ndarray, sigma: float, rng: None, scale: float) -> np.ndarray:
    out = _gaussian_sigma(to_float(image), float(sigma) * scale)
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
    blurred = quantize(_gaussian_sigma(to_float(image), sigma))
    height, width = image.shape[:2]
    # ImageNet-C walks rows h = H−δ … δ+1 and columns likewise, bottom-up and right-to-left, swapping each pixel
    # with a neighbour displaced by (dx, dy) ~ U{−δ, …, δ−1}². Swaps read pixels already moved, so the walk is
    # sequential; it runs on a list of indices and the image is permuted once at the end. At other sizes the
    # displacement δ' = δ·scale is not an integer: offsets are then U(−δ', δ') stochastically rounded (floor of
    # u + U(0, 1)), whose spread grows continuously with δ'.
    exact = scale == 1.0
    margin = int(delta) if exact else math.ceil(delta * scale) + 1
    ys = np.arange(height - margin - (0 if exact else 1), margin, -1)
    xs = np.arange(width - margin - (0 if exact else 1), margin, -1)
    src = (ys[:, None] * width + xs[None, :]).ravel()
    perm = list(range(height * width))
    for _ in range(int(iterations)):
        if exact:
            shifts = rng.integers(-margin, margin, size=(src.size, 2))
        else:
            spread = rng.uniform(-delta * scale, delta * scale, size=(src.size, 2))
            shifts = np.floor(spread + rng.random((src.size, 2))).astype(np.intp)
        dst = (src + shifts[:, 1] * width + shifts[:, 0]).tolist()
        for s, d in zip(src.tolist(), dst):
            perm[s], perm[d] = perm[d], perm[s]
    shuffled = blurred.reshape(height * width, -1)[np.asarray(perm)].reshape(image.shape)
    return quantize(_gaussian_sigma(to_float(shuffled), sigma).reshape(image.shape))
