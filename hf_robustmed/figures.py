"""Figures: the corruption gallery (the paper's Figure 1: rows corruptions, columns clean and severities 1–5), and
the benchmark's DCT-spectrum (Figure 2) and pixel-intensity density (Figure 5C) plots."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._optional import require
from .corruptions import corrupt, list_corruptions
from .files import atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


def image_grid(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    column_labels: Sequence[str],
    *,
    tile: int = 128,
    title: str | None = None,
) -> Image.Image:
    """A labelled grid of images: one ``(label, images)`` per row, one label per column."""
    font, small = _font(max(12, tile // 9)), _font(max(10, tile // 11))
    label_width, header, gap = int(tile * 1.25), tile // 4 + (tile // 5 if title else 0), 4
    canvas = Image.new(
        "RGB", (label_width + len(column_labels) * (tile + gap), header + len(rows) * (tile + gap)), _BACKGROUND
    )
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((gap, gap), title, fill=_INK, font=font)
    for column, label in enumerate(column_labels):
        draw.text((label_width + column * (tile + gap) + gap, header - tile // 5), label, fill=_INK, font=small)
    for row, (label, cells) in enumerate(rows):
        top = header + row * (tile + gap)
        draw.text((gap, top + tile // 2 - tile // 10), label, fill=_INK, font=small)
        for column, cell in enumerate(cells):
            canvas.paste(_tile(cell, tile), (label_width + column * (tile + gap), top))
    return canvas


SEVERITY_COLUMNS = ("clean", *(f"severity {s}" for s in range(1, 6)))


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
    rows = [
        (name, [image] + [corrupt(image, name, s, suite=suite, seed=seed, key=key) for s in range(1, 6)])
        for name in names
    ]
    return image_grid(rows, SEVERITY_COLUMNS, tile=tile, title=title)


# --- Benchmark description plots (matplotlib, optional: ``pip install hf-robustmed[viz]``) -------------------------
#
# These build ``matplotlib.figure.Figure`` objects directly instead of going through pyplot, so they never pick or
# change a backend: they work headless, leave an interactive session's backend alone, and need no closing.

_LUMA_601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def new_figure(**kwargs: object) -> Figure:
    """A matplotlib figure made without pyplot (see above), with ``Figure``'s keyword arguments.

    Raises:
        ImportError: Without matplotlib; the message names the ``viz`` extra.
    """
    Figure = require("matplotlib.figure", "viz", "these figures").Figure
    return Figure(**kwargs)


def _check_images(images: np.ndarray, name: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError(f"{name} must be a uint8 numpy array, got {getattr(images, 'dtype', type(images).__name__)}")
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise ValueError(f"{name} must be N×H×W (grey) or N×H×W×3 (RGB), got shape {images.shape}")
    if images.size == 0:
        raise ValueError(f"{name} is empty (shape {images.shape})")


def _check_sets(clean: np.ndarray, corrupted: dict[str, np.ndarray]) -> None:
    _check_images(clean, "clean")
    if not corrupted:
        raise ValueError("corrupted must name at least one corruption")
    for name, images in corrupted.items():
        _check_images(images, f"corrupted[{name!r}]")
        if images.shape[1:3] != clean.shape[1:3]:
            raise ValueError(f"corrupted[{name!r}] is {images.shape[1:3]} (H, W) but clean is {clean.shape[1:3]}")


def _grey(image: np.ndarray) -> np.ndarray:
    """One image as float32 grey in [0, 1] (ITU-R 601 luma for RGB)."""
    grey = image.astype(np.float32) @ _LUMA_601 if image.ndim == 3 else image.astype(np.float32)
    return grey / 255


def _radius_bins(height: int, width: int, bins: int) -> np.ndarray:
    """The bin index of each DCT coefficient's normalised radius √(u²+v²)/max."""
    radius = np.hypot(*np.mgrid[0:height, 0:width])
    return np.minimum((radius / radius.max() * bins).astype(np.intp), bins - 1)


def radial_dct_profile(images: np.ndarray, bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The radially averaged mean log-magnitude DCT spectrum of a set of images.

    Each image is converted to grey, cropped to even height and width (``cv2.dct`` needs them), transformed with an
    orthonormal 2-D DCT-II, and mapped to ``log(1 + |coef|)``; the maps are averaged over images and then over rings of
    equal normalised radius.

    Args:
        images: uint8 ``N×H×W`` or ``N×H×W×3``.
        bins: Number of radius bins over [0, 1].

    Returns:
        Centres of the non-empty bins, and the mean log-magnitude in each.

    Raises:
        ValueError: If the images are not a non-empty uint8 stack of at least 2×2 pixels, or ``bins`` < 1.
    """
    _check_images(images, "images")
    height, width = images.shape[1] // 2 * 2, images.shape[2] // 2 * 2
    if height == 0 or width == 0 or bins < 1:
        raise ValueError(f"need images of at least 2×2 pixels and bins >= 1, got shape {images.shape}, bins={bins}")
    total = np.zeros((height, width), dtype=np.float64)
    for image in images:
        total += np.log1p(np.abs(cv2.dct(np.ascontiguousarray(_grey(image[:height, :width])))))
    index = _radius_bins(height, width, bins).ravel()
    counts = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=total.ravel() / len(images), minlength=bins)
    filled = counts > 0
    return ((np.arange(bins) + 0.5) / bins)[filled], sums[filled] / counts[filled]


def intensity_density(images: np.ndarray) -> np.ndarray:
    """The normalised 256-bin histogram of pixel intensities (RGB channels pooled); it sums to 1.

    Raises:
        ValueError: If the images are not a non-empty uint8 ``N×H×W`` or ``N×H×W×3`` stack.
    """
    _check_images(images, "images")
    return np.bincount(images.ravel(), minlength=256) / images.size


def colours(count: int) -> list:
    """``count`` line colours: tab10's distinct hues up to ten, else evenly spaced along ``turbo``."""
    from matplotlib import colormaps

    if count <= 10:
        return [colormaps["tab10"](i) for i in range(count)]
    return list(colormaps["turbo"](np.linspace(0.05, 0.95, count)))


LINE_STYLES = ("-", "--", ":", "-.")


def _line_styles(count: int) -> list[tuple[tuple, str]]:
    """``count`` distinguishable (colour, line style) pairs: tab10's ten distinct hues, then again dashed, dotted…

    A continuous colour map gives neighbours that look alike once there are more than about eight lines; hues that
    repeat with another dash pattern stay apart.
    """
    from matplotlib import colormaps

    return [(colormaps["tab10"](i % 10), LINE_STYLES[(i // 10) % len(LINE_STYLES)]) for i in range(count)]


_DENSITY_BODY = slice(4, 252)  # the levels that set the density axis: clipped pixels pile up at 0 and 255 (and
# blur, JPEG and resizing smear those spikes over a few neighbouring levels)


def _density_limit(curves: list[np.ndarray]) -> float:
    """A y limit that shows the curves' body: 1.25 × their largest density on :data:`_DENSITY_BODY`, so that the
    spikes at the ends do not flatten everything else (the whole range when the body is empty)."""
    body = max(float(curve[_DENSITY_BODY].max()) for curve in curves)
    return 1.25 * body if body > 0 else 1.05 * max(float(curve.max()) for curve in curves)


def _mark_clipped(ax: Axes, curve: np.ndarray, top: float, colour: str) -> None:
    """Labels the highest bin of ``curve`` above ``top`` at each end of the axis with its level and density."""
    for half in (np.arange(0, 128), np.arange(128, 256)):
        over = half[curve[half] > top]
        if len(over):
            level = int(over[np.argmax(curve[over])])
            ax.annotate(
                f"{curve[level]:.2f} at {level} ↑",
                xy=(level, top),
                xytext=(3 if level < 128 else -3, -3),
                textcoords="offset points",
                ha="left" if level < 128 else "right",
                va="top",
                fontsize="x-small",
                color=colour,
            )


def dct_spectrum_figure(clean: np.ndarray, corrupted: dict[str, np.ndarray], *, title: str | None = None) -> Figure:
    """The paper's Figure 2: radially averaged DCT spectra of clean and corrupted images, one line per set.

    Args:
        clean: uint8 ``N×H×W`` or ``N×H×W×3`` clean images.
        corrupted: Corruption name → uint8 images of the same kind and ``H×W`` (``N`` may differ).
        title: Heading; default "Average DCT spectrum".

    Raises:
        ValueError: On invalid or mismatched images, or an empty ``corrupted``.
        ImportError: If matplotlib is not installed.
    """
    _check_sets(clean, corrupted)
    fig = new_figure(figsize=(7.8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(*radial_dct_profile(clean), color="black", linewidth=2.4, label="clean", zorder=3)
    for (name, images), (colour, style) in zip(corrupted.items(), _line_styles(len(corrupted)), strict=True):
        ax.plot(*radial_dct_profile(images), color=colour, linestyle=style, linewidth=1.4, label=name)
    # A log scale: the high frequencies, where blur and noise differ, are orders of magnitude below the low ones.
    ax.set_yscale("log")
    ax.set(xlim=(0, 1), xlabel="normalised frequency radius", ylabel="mean log(1 + |DCT coefficient|), log scale")
    ax.set_title(title or "Average DCT spectrum")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncols=1 + len(corrupted) // 16, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def intensity_density_figure(
    clean: np.ndarray, corrupted: dict[str, np.ndarray], *, title: str | None = None
) -> Figure:
    """The paper's Figure 5C: pixel-intensity densities, clean (grey fill) against each corruption (line).

    One subplot per corruption, at most four columns, sharing the intensity axis. The density axis shows the body
    of the distributions: spikes at 0 and 255 (clipped pixels, e.g. of brightness or contrast increases) that rise
    above it are cut at the top and labelled with their value.

    Args:
        clean: uint8 ``N×H×W`` or ``N×H×W×3`` clean images.
        corrupted: Corruption name → uint8 images of the same kind and ``H×W`` (``N`` may differ).
        title: Heading; default "Pixel intensity density".

    Raises:
        ValueError: On invalid or mismatched images, or an empty ``corrupted``.
        ImportError: If matplotlib is not installed.
    """
    _check_sets(clean, corrupted)
    columns = min(4, len(corrupted))
    rows = -(-len(corrupted) // columns)
    fig = new_figure(figsize=(3.2 * columns, 2.4 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, sharex=True, squeeze=False).ravel()
    levels, reference = np.arange(256), intensity_density(clean)
    for ax, (name, images), colour in zip(axes, corrupted.items(), colours(len(corrupted)), strict=False):
        density = intensity_density(images)
        top = _density_limit([reference, density])
        ax.fill_between(levels, reference, step="mid", color="0.75", label="clean")
        ax.plot(levels, density, drawstyle="steps-mid", color=colour, linewidth=1.2, label=name)
        ax.set_title(name, fontsize="medium")
        ax.set_xlim(0, 255)
        ax.set_ylim(0, top)
        _mark_clipped(ax, density, top, "0.2")
        ax.legend(fontsize="x-small", loc="upper center", framealpha=0.9)
    for ax in axes[len(corrupted) :]:
        fig.delaxes(ax)
    for ax in axes[max(0, len(corrupted) - columns) : len(corrupted)]:  # the lowest cell of each column
        ax.tick_params(labelbottom=True)
    fig.supxlabel("pixel intensity")
    fig.supylabel("density")
    fig.suptitle(title or "Pixel intensity density")
    return fig


def render_png(fig: Figure, path: str | os.PathLike) -> None:
    """Writes ``fig`` as a PNG (120 dpi, tight bounding box) to ``path``, as is (not atomically)."""
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Writes ``fig`` as a PNG (120 dpi) atomically and releases it.

    Returns:
        The path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        render_png(fig, tmp)
    pyplot = sys.modules.get("matplotlib.pyplot")  # only a figure made through pyplot is registered there
    if pyplot is not None:
        pyplot.close(fig)
    return path
