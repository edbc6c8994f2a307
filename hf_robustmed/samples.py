"""Sample images made by code, for demos, docs and tests (no downloads, no asset files)."""

from __future__ import annotations

import numpy as np

# Modified Shepp–Logan phantom (Toft 1996): intensity, semi-axes a, b, centre x, y, rotation in degrees.
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0),
)


def shepp_logan(size: int = 224) -> np.ndarray:
    """The modified Shepp–Logan head phantom, the classic CT test image, as ``size × size`` uint8 grey."""
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(coords, -coords)
    image = np.zeros((size, size))
    for value, a, b, x0, y0, degrees in _SHEPP_LOGAN:
        theta = np.radians(degrees)
        xr = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
        yr = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
        image[(xr / a) ** 2 + (yr / b) ** 2 <= 1] += value
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def stained_cells(size: int = 224, seed: int = 0) -> np.ndarray:
    """A synthetic RGB microscopy-like field: pink background, purple nucleated cells (``size × size × 3``)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.empty((size, size, 3))
    image[:] = (0.93, 0.80, 0.85)
    for _ in range(max(3, size // 20)):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(0.04, 0.09) * size
        dist = np.hypot(yy - cy, xx - cx)
        image[dist <= r] = (0.80, 0.55, 0.70)
        image[dist <= 0.55 * r] = (0.38, 0.22, 0.55)
    image += rng.normal(0, 0.02, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)
