"""Compiled loops for the two corruptions that numpy cannot make fast, used when numba is installed.

* Glass blur swaps every pixel with a random neighbour, one after the other; each swap reads pixels that earlier
  swaps moved, so the walk is sequential: in Python a loop of ~10⁵ list swaps per image (about 6 ms).
* Zoom blur sums a dozen bilinear resamplings of the image; numpy needs about ten array passes for each.

numba is optional (``pip install "hf-robustmed[fast]"``). The compiled loops perform the same operations in the same
order as the numpy code (float32, no fast-math: no fused multiply-adds, no reordering), so the output bytes are the same
with or without it; ``tests/test_corruptions.py`` checks both paths against the same references.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

import numpy as np


def _swap_walk(perm: np.ndarray, src: np.ndarray, shifts: np.ndarray, width: int) -> None:
    """Swaps entry ``src[i]`` of ``perm`` with entry ``src[i] + shifts[i, 1]·width + shifts[i, 0]``, i = 0, 1, …"""
    for i in range(src.shape[0]):
        s = src[i]
        d = s + shifts[i, 1] * width + shifts[i, 0]
        if s != d:
            perm[s], perm[d] = perm[d], perm[s]


def _zoom_sum(
    acc_t: np.ndarray,
    plane: np.ndarray,
    tops: np.ndarray,
    lefts: np.ndarray,
    widths: np.ndarray,
    r_lo: np.ndarray,
    r_hi: np.ndarray,
    r_w: np.ndarray,
    c_lo: np.ndarray,
    c_hi: np.ndarray,
    c_w: np.ndarray,
    work_t: np.ndarray,
) -> None:
    """``acc_t += clipped_zoom(plane)ᵀ`` for each zoom factor in turn, as ``filters.clipped_zoom`` computes it.

    Transposed (W×H accumulator and work buffer) so that both stages run over contiguous memory: the row stage
    blends two source rows, ``(bottom − top)·w + top``, into a column of the work buffer; the column stage then
    blends two of its rows the same way into a row of the accumulator. The factors' plans are stacked by
    ``blur._stacked_zoom_plans``.
    """
    height = plane.shape[0]
    for z in range(tops.shape[0]):
        top, left = tops[z], lefts[z]
        for y in range(height):
            lo, hi, w = r_lo[z, y] + top, r_hi[z, y] + top, r_w[z, y]
            for x in range(widths[z]):
                upper = plane[lo, left + x]
                work_t[x, y] = (plane[hi, left + x] - upper) * w + upper
        for x in range(acc_t.shape[0]):
            lo, hi, w = c_lo[z, x], c_hi[z, x], c_w[z, x]
            for y in range(height):
                start = work_t[lo, y]
                acc_t[x, y] += (work_t[hi, y] - start) * w + start


_LOOPS = {"swap_walk": _swap_walk, "zoom_sum": _zoom_sum}


@cache
def compiled(name: str) -> Callable | None:
    """The loop ``name`` (``swap_walk`` or ``zoom_sum``) compiled by numba, or ``None``.

    ``None`` without numba or with ``HF_ROBUSTMED_NO_JIT=1``. numba is imported on first use only: importing it
    takes a good fraction of a second, which no other corruption should pay.
    """
    if os.environ.get("HF_ROBUSTMED_NO_JIT", "") not in ("", "0"):
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(cache=True, nogil=True)(_LOOPS[name])
