"""Filters the blur and weather corruptions are built from, each reproducing its reference's arithmetic.

* :func:`gaussian_sigma`: scikit-image's ``gaussian`` (truncate 4, nearest borders) with OpenCV;
* :func:`motion_taps`, :func:`line_filter`, :func:`imagemagick_q16_to_8bit`: ImageMagick's MotionBlurImage (its
  kernel, the weighted sum along the line, its 16-bit quantum written to 8 bits);
* :func:`zoom_plan`, :func:`clipped_zoom`: ImageNet-C's ``clipped_zoom`` (SciPy ``ndimage.zoom(order=1)``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

Taps = tuple[tuple[int, int, float], ...]


def gaussian_sigma(x: np.ndarray, sigma: float, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """scikit-image ``gaussian(truncate=4, mode='nearest')`` with OpenCV."""
    radius = max(1, int(4.0 * sigma + 0.5))
    return cv2.GaussianBlur(x, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, sigmaY=sigma, borderType=border)


@lru_cache(maxsize=256)
def motion_taps(radius: float, sigma: float, angle_deg: float) -> Taps:
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
    for y, x, w in zip(dy.tolist(), dx.tolist(), weights.tolist(), strict=True):
        merged[(y, x)] = merged.get((y, x), 0.0) + w
    return tuple((y, x, w) for (y, x), w in merged.items())


def motion_kernel(radius: float, sigma: float, angle_deg: float) -> tuple[np.ndarray, int]:
    """The taps laid out as a centred 2-D correlation kernel, and its half size (for inspection and tests)."""
    taps = motion_taps(radius, sigma, angle_deg)
    half = max(max(abs(y), abs(x)) for y, x, _ in taps)
    kernel = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float32)
    for y, x, w in taps:
        kernel[y + half, x + half] += w
    return kernel, half


# OpenCV's filter2D applies a float kernel directly (one fused multiply-add per non-zero tap, in raster order) while
# its area is below 130, and through a DFT from there on, which is several times slower for our sparse lines.
_DIRECT_FILTER_AREA = 130


def _tap_bands(taps: Taps) -> list[tuple[int, int, np.ndarray]]:
    """Taps with ``dy, dx ≥ 0`` cut, in raster order, into kernels that filter2D applies directly.

    Returns:
        ``(top, left, kernel)`` per band: the kernel's float32 weights at offsets ``(dy − top, dx − left)``.
    """
    bands: list[list[tuple[int, int, float]]] = [[]]
    for tap in sorted(taps):
        band = bands[-1] + [tap]
        if len(band) > 1 and _box_area(band) >= _DIRECT_FILTER_AREA:
            bands.append([tap])
        else:
            bands[-1] = band
    return [_band_kernel(band) for band in bands]


def _box_area(taps: list[tuple[int, int, float]]) -> int:
    rows, cols = [y for y, _, _ in taps], [x for _, x, _ in taps]
    return (max(rows) - min(rows) + 1) * (max(cols) - min(cols) + 1)


def _band_kernel(taps: list[tuple[int, int, float]]) -> tuple[int, int, np.ndarray]:
    top, left = min(y for y, _, _ in taps), min(x for _, x, _ in taps)
    kernel = np.zeros((max(y for y, _, _ in taps) - top + 1, max(x for _, x, _ in taps) - left + 1), np.float32)
    for y, x, w in taps:
        kernel[y - top, x - left] = w
    return top, left, kernel


def _apply_taps(image: np.ndarray, taps: Taps) -> np.ndarray:
    """``Σ w · image(y + dy, x + dx)`` over taps with ``dy, dx ≥ 0``, edge pixels repeated, in float32.

    Each band of taps is one direct filter2D over a window of the image padded at the bottom and right, anchored
    at its top-left tap; the bands' sums are added. float32 rounding (< 10⁻³ grey levels) flips the final 8-bit
    level only at rare boundaries.
    """
    height, width = image.shape[:2]
    bottom, right = max(y for y, _, _ in taps), max(x for _, x, _ in taps)
    padded = cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    padded = padded.reshape(height + bottom, width + right, -1).astype(np.float32)
    out = None
    for top, left, kernel in _tap_bands(taps):
        window = padded[top : top + height + kernel.shape[0] - 1, left : left + width + kernel.shape[1] - 1]
        band = cv2.filter2D(window, -1, kernel, anchor=(0, 0), borderType=cv2.BORDER_REPLICATE)[:height, :width]
        out = band if out is None else np.add(out, band, out=out)
    return out.reshape(height, width, -1)


def line_filter(image: np.ndarray, taps: Taps) -> np.ndarray:
    """``Σ w · image(y + dy, x + dx)`` (H×W×C float32, edges repeated) for a line of taps, each axis of one sign.

    A line going up or left is applied as the line going down and right to the flipped image, and flipped back.
    """
    flip_rows, flip_cols = any(y < 0 for y, _, _ in taps), any(x < 0 for _, x, _ in taps)
    if not (flip_rows or flip_cols):
        return _apply_taps(image, taps)
    code = -1 if flip_rows and flip_cols else (0 if flip_rows else 1)
    flipped = cv2.flip(image, code).reshape(image.shape)
    out = _apply_taps(flipped, tuple((abs(y), abs(x), w) for y, x, w in taps))
    return cv2.flip(out, code).reshape(out.shape)


def imagemagick_q16_to_8bit(levels: np.ndarray) -> np.ndarray:
    """ImageMagick Q16's output path: the 16-bit quantum ``round(257·s)``, written to 8 bits as ``q // 257``.

    Reproduces ImageMagick 6.9 (Debian's Q16 build) bit for bit on our test images; plain truncation of ``s``
    agrees on 97–99.8 % of pixels, rounding on about half. ``levels`` (non-negative weighted means of grey levels,
    so below 255·(1 + 10⁻⁵) and the quantum below 65536) is overwritten.
    """
    levels *= np.float32(257.0)
    levels += np.float32(0.5)
    quantum = levels.astype(np.int32)  # truncation is the floor here
    quantum += 1
    quantum *= 255
    quantum >>= 16  # (q + 1)·255 >> 16 = q // 257 for every q in 0..65535
    return quantum.astype(np.uint8)


def _zoom_axis(length: int, zoom: float) -> tuple[slice, np.ndarray, np.ndarray, np.ndarray]:
    """Sampling of one axis by ImageNet-C's ``clipped_zoom``.

    The centred crop of ``ceil(length / zoom)`` pixels is zoomed with SciPy ``ndimage.zoom(order=1)``, whose
    output pixel ``o`` samples input coordinate ``o·(n_in − 1)/(n_out − 1)``, and the result is centre-cropped
    back to ``length``. Returns the crop and, for every kept output pixel, the two source indices and the weight.
    """
    crop = math.ceil(length / zoom)
    start = (length - crop) // 2
    zoomed = round(crop * zoom)
    trim = (zoomed - length) // 2
    out = np.arange(trim, trim + length, dtype=np.float64)
    step = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    coord = out * step
    lo = np.clip(np.floor(coord).astype(np.intp), 0, crop - 1)
    hi = np.minimum(lo + 1, crop - 1)
    weight = (coord - lo).astype(np.float32)
    return slice(start, start + crop), lo, hi, weight


@lru_cache(maxsize=512)
def zoom_plan(height: int, width: int, zoom: float) -> tuple:
    """The row and column sampling of :func:`clipped_zoom` for an H×W plane (see ``_zoom_axis``)."""
    return _zoom_axis(height, zoom), _zoom_axis(width, zoom)


def clipped_zoom(plane: np.ndarray, zoom: float) -> np.ndarray:
    """ImageNet-C's ``clipped_zoom`` of one H×W float32 plane (bilinear, separable: rows, then columns)."""
    (rows, r_lo, r_hi, r_w), (cols, c_lo, c_hi, c_w) = zoom_plan(plane.shape[0], plane.shape[1], zoom)
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
