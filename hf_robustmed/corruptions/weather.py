"""ImageNet-C weather corruptions that need no image assets: fog, snow and spatter.

(Frost needs ImageNet-C's frost photographs and is left out.) Lengths in pixels (motion-blur radius, blur σ)
scale with ``min(H, W) / 224``; the fog fractal is scale-free.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._common import quantize, to_float
from .filters import clipped_zoom, gaussian_sigma, imagemagick_q16_to_8bit, line_filter, motion_taps
from .registry import register_op


def plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C's diamond-square plasma fractal on a ``size × size`` grid (size a power of 2), in [0, 1]."""
    grid = np.zeros((size, size), dtype=np.float64)
    step, wibble = size, 100.0

    def wibbled_mean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:size:step, 0:size:step]
        squares = corners + np.roll(corners, shift=-1, axis=0)
        squares += np.roll(squares, shift=-1, axis=1)
        grid[half:size:step, half:size:step] = wibbled_mean(squares)
        centres = grid[half:size:step, half:size:step]
        corners = grid[0:size:step, 0:size:step]
        grid[0:size:step, half:size:step] = wibbled_mean(
            centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        )
        grid[half:size:step, 0:size:step] = wibbled_mean(
            centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        )
        step //= 2
        wibble /= decay
    grid -= grid.min()
    return grid / grid.max()


@register_op(
    "fog",
    category="weather",
    random=True,
    grey_native=True,
    param_doc="(fog strength, fractal decay)",
    ancestor="ImageNet-C fog (plasma fractal)",
)
def fog(image: np.ndarray, param: tuple[float, float], rng: np.random.Generator, scale: float) -> np.ndarray:
    strength, decay = param
    height, width = image.shape[:2]
    size = 1 << max(1, math.ceil(math.log2(max(height, width))))
    x = image / 255.0
    top = x.max()
    x += strength * plasma_fractal(size, decay, rng)[:height, :width, None]
    return quantize(x * top / (top + strength), top=1.0)


def _motion_blur_float(layer: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    return line_filter(layer, motion_taps(radius, sigma, angle))[..., 0]


@register_op(
    "snow",
    category="weather",
    random=True,
    grey_native=False,
    param_doc="(mean, std, zoom, threshold, blur radius px, blur σ px, image weight)",
    ancestor="ImageNet-C snow (its ImageMagick motion blur replaced by ours)",
)
def snow(image: np.ndarray, param: tuple, rng: np.random.Generator, scale: float) -> np.ndarray:
    loc, std, zoom, threshold, radius, sigma, weight = param
    x = to_float(image) / np.float32(255)
    height, width = x.shape[:2]
    layer = rng.normal(loc, std, size=(height, width, 1)).astype(np.float32)
    layer = clipped_zoom(layer[..., 0], float(zoom))
    layer[layer < threshold] = 0
    layer = np.floor(np.clip(layer, 0, 1) * 255).astype(np.float32)
    angle = float(rng.uniform(-135.0, -45.0))
    layer = imagemagick_q16_to_8bit(_motion_blur_float(layer, radius * scale, sigma * scale, angle)) / 255.0
    layer = layer.astype(np.float32)[..., None]
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None] if x.shape[2] == 3 else x
    x = weight * x + (1 - weight) * np.maximum(x, grey * 1.5 + 0.5)
    return quantize(x + layer + np.rot90(layer, k=2), top=1.0)


@register_op(
    "spatter",
    category="weather",
    random=True,
    grey_native=False,
    param_doc="(mean, std, σ px, threshold, intensity, mud?)",
    ancestor="ImageNet-C spatter (water drops or mud)",
)
def spatter(image: np.ndarray, param: tuple, rng: np.random.Generator, scale: float) -> np.ndarray:
    loc, std, sigma, threshold, intensity, mud = param
    x = to_float(image) / np.float32(255)
    liquid = gaussian_sigma(rng.normal(loc, std, size=x.shape[:2]).astype(np.float32), sigma * scale)
    liquid[liquid < threshold] = 0
    if mud == 0:
        liquid8 = (liquid * 255).astype(np.uint8)
        dist = 255 - cv2.Canny(liquid8, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
        ridge = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)
        dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, ridge), (3, 3)).astype(np.float32)
        strength = liquid8.astype(np.float32) * dist
        strength /= max(float(strength.max()), 1e-12)
        strength *= intensity
        colour = np.array([175, 238, 238], dtype=np.float32)[: x.shape[2]] / 255
        return quantize(x + strength[..., None] * colour, top=1.0)
    mask = gaussian_sigma(np.where(liquid > threshold, 1.0, 0.0).astype(np.float32), intensity * scale)
    mask[mask < 0.8] = 0
    colour = np.array([63, 42, 20], dtype=np.float32)[: x.shape[2]] / 255
    return quantize(x * (1 - mask[..., None]) + colour * mask[..., None], top=1.0)
