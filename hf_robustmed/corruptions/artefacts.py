"""Task-specific artefacts of MedMNIST-C: stain deposits, bubbles, black corners and overprinted characters.

The reference draws these with Python's ``random`` and ships its ink masks as an asset file. We draw from the
per-sample :class:`numpy.random.Generator` with the same laws (counts, sizes, placements, colours) and make the ink
masks procedurally (:func:`ink_masks`): ten blobs per size, of the reference's sizes and fill fractions.
Pixel quantities (mask sizes, radii, margins, font scale) are for 224 px and scale with the image.
"""

from __future__ import annotations

import string
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .registry import register_op

INKS_PER_SIZE = 10


class _Draws:
    """Integer draws from one batch of uniforms (one generator call per image instead of dozens)."""

    def __init__(self, rng: np.random.Generator, count: int):
        self._rng, self._count = rng, max(1, count)
        self._uniforms = rng.random(self._count).tolist()
        self._next = 0

    def randint(self, low: int, high: int) -> int:
        """Uniform on ``low..high`` inclusive, like Python's ``random.randint``; ``low`` if the range is empty."""
        if self._next == len(self._uniforms):  # the batch was sized for the worst case; refill if not
            self._uniforms += self._rng.random(self._count).tolist()
        u = self._uniforms[self._next]
        self._next += 1
        return low + min(int(u * (high - low + 1)), high - low) if high > low else int(low)


@lru_cache(maxsize=32)
def ink_masks(size: int) -> np.ndarray:
    """Ten binary ink-blot masks of ``size × size`` pixels (``uint8`` 0/1), the same on every call.

    Each blot is a star-shaped body, ``r(θ) = R·(1 + Σ a_j cos(jθ + φ_j))`` for j = 2..5, with R chosen so
    that the blot covers about 60 % of its square like the reference's masks (52–70 %), plus up to two droplets
    near its rim. The shapes come from a fixed seed, so masks never depend on the caller's random state.
    """
    size = max(3, int(size))
    rng = np.random.default_rng([0x1A4C, size])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    masks = np.zeros((INKS_PER_SIZE, size, size), dtype=np.uint8)
    for k in range(INKS_PER_SIZE):
        centre = size / 2 + rng.uniform(-0.04, 0.04, size=2) * size
        dy, dx = yy - centre[0], xx - centre[1]
        theta, radius = np.arctan2(dy, dx), np.hypot(dy, dx)
        harmonics = np.arange(2, 6)
        amplitudes = rng.uniform(0.02, 0.09, size=harmonics.size)
        phases = rng.uniform(0, 2 * np.pi, size=harmonics.size)
        wobble = 1 + (amplitudes[:, None, None] * np.cos(harmonics[:, None, None] * theta + phases[:, None, None])).sum(
            0
        )
        body = radius <= rng.uniform(0.40, 0.45) * size * wobble
        for _ in range(rng.integers(0, 3)):
            angle, r = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.09) * size
            cy, cx = centre + 0.42 * size * np.array([np.sin(angle), np.cos(angle)])
            body |= np.hypot(yy - cy, xx - cx) <= r
        masks[k] = body
    return masks


@register_op(
    "stain_deposit",
    category="artefact",
    random=True,
    grey_native=True,
    param_doc="(max stains m, ink size px): n ~ U{1..m} blots painted black",
    ancestor="MedMNIST-C stain_deposit (24-px inks for severities 1–4, 32-px for 5)",
)
def stain_deposit(image: np.ndarray, param: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    max_stains, ink_size = param
    inks = ink_masks(max(3, round(ink_size * scale)))
    margin = round(10 * scale)
    height, width = image.shape[:2]
    out = image.copy()
    draws = _Draws(rng, 1 + 3 * int(max_stains))
    count = draws.randint(1, max_stains) if max_stains > 1 else int(max_stains)
    for _ in range(count):
        ink = inks[draws.randint(0, len(inks) - 1)]
        ink_h, ink_w = ink.shape
        x0 = draws.randint(margin, width - ink_w - margin)
        y0 = draws.randint(margin, height - ink_h - margin)
        region = out[y0 : y0 + ink_h, x0 : x0 + ink_w]
        region[ink[: region.shape[0], : region.shape[1]].astype(bool)] = 0
    return out


@register_op(
    "bubble",
    category="artefact",
    random=True,
    grey_native=True,
    param_doc="(max radius px, max count): n ~ U{7..max} translucent white bubbles",
    ancestor="MedMNIST-C bubble: Pillow ellipses (border α 130, inside α 100) pasted over the image",
)
def bubble(image: np.ndarray, param: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    max_radius, max_bubbles = param
    height, width = image.shape[:2]
    min_radius, border = max(1, round(3 * scale)), max(1, round(2 * scale))
    max_radius = max(min_radius, round(max_radius * scale))
    alpha = np.zeros((height, width), np.uint8)
    draws = _Draws(rng, 1 + 3 * max(7, int(max_bubbles)))
    for _ in range(draws.randint(7, max_bubbles)):
        r = draws.randint(min_radius, max_radius)
        cx, cy = draws.randint(r, width - r), draws.randint(r, height - r)
        _paste_stamp(alpha, _bubble_stamp(r, border), cy - r - border, cx - r - border)
    # The reference pastes a white RGBA overlay through its own alpha: out = round(v + α·(255 − v) / 255), i.e.
    # one 256-entry table per alpha level, applied where that level was drawn.
    out = image.copy()
    for level in (_RIM_ALPHA, _INSIDE_ALPHA):
        cv2.copyTo(cv2.LUT(image, _white_blend_lut(level)), (alpha == level).view(np.uint8), out)
    return out.reshape(image.shape)


_RIM_ALPHA, _INSIDE_ALPHA = 130, 100


@lru_cache(maxsize=256)
def _bubble_stamp(radius: int, border: int) -> np.ndarray:
    """One bubble's alpha as Pillow draws it on its bounding square: rim ellipse α 130, then inside ellipse α 100.

    Pillow rasterises an ellipse from its integer bounding box the same wherever the box lies, so stamping this
    square (its non-zero pixels) gives the image that drawing the two ellipses there gives: one small copy per
    bubble instead of two Pillow calls.
    """
    side = 2 * (radius + border) + 1
    stamp = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(stamp)
    draw.ellipse((0, 0, side - 1, side - 1), fill=_RIM_ALPHA)
    draw.ellipse((border, border, border + 2 * radius, border + 2 * radius), fill=_INSIDE_ALPHA)
    return np.asarray(stamp)


def _paste_stamp(alpha: np.ndarray, stamp: np.ndarray, top: int, left: int) -> None:
    """Overwrites ``alpha`` with the stamp's non-zero pixels, its top-left corner at (top, left), clipped."""
    height, width = alpha.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + stamp.shape[0], height), min(left + stamp.shape[1], width)
    if y0 < y1 and x0 < x1:
        part = stamp[y0 - top : y1 - top, x0 - left : x1 - left]
        np.copyto(alpha[y0:y1, x0:x1], part, where=part > 0)


@lru_cache(maxsize=8)
def _white_blend_lut(alpha: int) -> np.ndarray:
    """Pillow's paste of white at ``alpha``: ``DIV255(v·(255 − α) + 255·α)`` with its rounding."""
    v = np.arange(256, dtype=np.int64)
    tmp = v * (255 - alpha) + 255 * alpha + 128
    return (((tmp >> 8) + tmp) >> 8).astype(np.uint8)


@register_op(
    "black_corner",
    category="artefact",
    random=False,
    grey_native=True,
    param_doc="radius multiplier m of the inscribed circle; outside is black",
    ancestor="MedMNIST-C black_corner (OpenCV filled circle)",
)
def black_corner(image: np.ndarray, multiplier: float, rng: None, scale: float) -> np.ndarray:
    mask = _inscribed_disk(image.shape[0], image.shape[1], float(multiplier))
    return cv2.bitwise_and(image, image, mask=mask).reshape(image.shape)


@lru_cache(maxsize=64)
def _inscribed_disk(height: int, width: int, multiplier: float) -> np.ndarray:
    """0/255 mask of the reference's circle: centre (W//2, H//2), radius ``int(r · multiplier)``."""
    cx, cy = width // 2, height // 2
    radius = min(cx, cy, width - cx, height - cy)
    circle = np.zeros((height, width), np.uint8)
    cv2.circle(circle, (cx, cy), int(radius * multiplier), 255, thickness=-1)
    return circle


@register_op(
    "characters",
    category="artefact",
    random=True,
    grey_native=False,
    param_doc="(max words, max letters per word, max font scale): random lowercase words in random colours",
    ancestor="MedMNIST-C characters (OpenCV putText, Hershey duplex, anti-aliased)",
)
def characters(image: np.ndarray, param: tuple[int, int, float], rng: np.random.Generator, scale: float) -> np.ndarray:
    max_words, max_letters, max_font_scale = param
    height, width = image.shape[:2]
    out = np.ascontiguousarray(image.copy())
    margin = max(1, round(10 * scale))
    draws = _Draws(rng, 1 + int(max_words) * (7 + int(max_letters)))
    for _ in range(draws.randint(1, max_words)):
        letters = draws.randint(3, max_letters)
        font_scale = draws.randint(14, int(max_font_scale * 100)) / 100.0 * scale
        word = "".join(string.ascii_lowercase[draws.randint(0, 25)] for _ in range(letters))
        x0 = draws.randint(margin, width - round(8 * letters * scale))
        y0 = draws.randint(margin, height - margin)
        colour = (draws.randint(0, 255), draws.randint(0, 255), draws.randint(0, 255))
        cv2.putText(out, word, (x0, y0), cv2.FONT_HERSHEY_DUPLEX, font_scale, colour, 1, cv2.LINE_AA)
    return out
