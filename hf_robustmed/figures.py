"""Figures: the corruption gallery (the paper's Figure 1: rows corruptions, columns clean and severities 1–5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .corruptions import corrupt, list_corruptions

_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _tile(image: np.ndarray, size: int) -> Image.Image:
    pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image).convert("RGB")
    pil.thumbnail((size, size), Image.Resampling.NEAREST if max(pil.size) < size else Image.Resampling.LANCZOS)
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.NEAREST)
    return pil


def corruption_gallery(
    image: np.ndarray,
    *,
    suite: str | None = None,
    corruptions: Sequence[str] | None = None,
    seed: int = 0,
    key: int | str = 0,
    tile: int = 128,
    title: str | None = None,
) -> Image.Image:
    """A grid: one row per corruption, columns clean then severities 1–5.

    Args:
        image: The clean image (any size the engine accepts); it is corrupted at its own size.
        suite: Parameter suite; ``None`` for ImageNet-C.
        corruptions: Subset and order of rows; default all of the suite's.
        seed, key: Passed to :func:`~hf_robustmed.corruptions.corrupt`.
        tile: Side of each cell in pixels (images are upscaled with nearest neighbours so pixels stay visible).
        title: Optional heading.
    """
    names = list(corruptions) if corruptions else list_corruptions(suite)
    font, small = _font(max(12, tile // 9)), _font(max(10, tile // 11))
    label_width, header, gap = int(tile * 1.25), tile // 4 + (tile // 5 if title else 0), 4
    width = label_width + 6 * (tile + gap)
    height = header + len(names) * (tile + gap)
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, gap), title, fill=_INK, font=font)
    for column, label in enumerate(["clean", *(f"severity {s}" for s in range(1, 6))]):
        draw.text((label_width + column * (tile + gap) + gap, header - tile // 5), label, fill=_INK, font=small)
    for row, name in enumerate(names):
        top = header + row * (tile + gap)
        draw.text((gap, top + tile // 2 - tile // 10), name, fill=_INK, font=small)
        cells = [image] + [corrupt(image, name, s, suite=suite, seed=seed, key=key) for s in range(1, 6)]
        for column, cell in enumerate(cells):
            canvas.paste(_tile(cell, tile), (label_width + column * (tile + gap), top))
    return canvas
