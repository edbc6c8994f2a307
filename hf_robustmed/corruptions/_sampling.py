"""Exact sampling of per-pixel noise laws with one 32-bit uniform draw per element.

A noise corruption maps grey level ``v`` to a random output level whose law depends only on ``v`` (for example
``floor(clip(v + 255·σ·n, 0, 255))`` with ``n ~ N(0, 1)``). With 256 input levels its law is a table:
``cdf[v, k] = P(out ≤ k)``. Sampling inverts that table with a uniform ``u``; a Chen–Asau guide table (the smallest
``k`` with ``cdf ≥ j/M`` for each of M cells) makes that one gather plus rare corrections. The output has exactly
the reference's law (at 2⁻³² resolution), at a fraction of the cost of drawing a float normal per element and
doing the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GUIDE_BITS = 12


_AMBIGUOUS = np.uint16(0x8000)


@dataclass(frozen=True)
class DiscreteLaw:
    """The law of a noisy output level for each of the 256 input levels.

    Attributes:
        thresholds: ``256 × L`` uint64, ``floor(cdf[v, k] · 2³²)`` (last column 2³²: always reached). The
            outcome for a uniform ``u`` is the smallest k with ``u < thresholds[v, k]``.
        guide: ``256 × 2^GUIDE_BITS`` uint16: the outcome of every ``u`` in the cell when they all agree, else
            ``0x8000``, flagging a cell that straddles a threshold.
        bounds: ``256 × (2^GUIDE_BITS + 1)`` uint16, the outcome at each cell's lower end (and of u = 2³² − 1):
            the bracket of a binary search in flagged cells.
        values: ``L`` uint8, the grey level that outcome k stands for, or ``None`` when it is k itself.
    """

    thresholds: np.ndarray
    guide: np.ndarray
    bounds: np.ndarray
    values: np.ndarray | None

    @classmethod
    def from_cdf(cls, cdf: np.ndarray, values: np.ndarray | None = None) -> DiscreteLaw:
        """Builds the tables from ``cdf[v, k] = P(out ≤ k)`` (shape ``256 × L``, non-decreasing in k)."""
        if cdf.shape[1] >= 0x8000:
            raise ValueError(f"a discrete law needs fewer than 32768 outcomes, got {cdf.shape[1]}")
        cdf = np.maximum.accumulate(np.clip(cdf, 0.0, 1.0), axis=1)
        thresholds = np.floor(cdf * 2.0**32).astype(np.uint64)
        thresholds[:, -1] = 2**32
        edges = np.arange((1 << GUIDE_BITS) + 1, dtype=np.uint64) << np.uint64(32 - GUIDE_BITS)
        edges[-1] = 2**32 - 1
        bounds = np.stack([np.searchsorted(row, edges, side="right") for row in thresholds]).astype(np.uint16)
        # Outcome at a cell's upper end (exclusive) is that of its last u = next edge − 1.
        last = np.stack([np.searchsorted(row, edges[1:] - np.uint64(1), side="right") for row in thresholds])
        guide = np.where(bounds[:, :-1] == last, bounds[:, :-1], _AMBIGUOUS).astype(np.uint16)
        if values is not None and np.array_equal(values, np.arange(cdf.shape[1])):
            values = None
        return cls(thresholds, guide, bounds, None if values is None else np.asarray(values, dtype=np.uint8))

    def sample(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw of the law for every element of a uint8 array: the outcomes' grey levels, same shape."""
        k = self.sample_index(image, rng)
        return (k.astype(np.uint8) if self.values is None else np.take(self.values, k)).reshape(image.shape)

    def sample_index(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw per element of a uint8 array: outcome indices k (uint16), same shape."""
        grey = image.reshape(-1)
        u = uniform_u32(rng, grey.size)
        cell = (grey.astype(np.uint32) << GUIDE_BITS) | (u >> np.uint32(32 - GUIDE_BITS))
        k = np.take(self.guide, cell)  # np.take: several times faster than fancy indexing
        ambiguous = np.flatnonzero(k == _AMBIGUOUS)
        if ambiguous.size:
            k[ambiguous] = self._search(grey[ambiguous], cell[ambiguous], u[ambiguous])
        return k.reshape(image.shape)

    def sample_shared(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Draws from the law's first row only (a law that does not depend on the input level): indices k."""
        u = uniform_u32(rng, int(np.prod(shape)))
        k = np.take(self.guide[0], u >> np.uint32(32 - GUIDE_BITS))
        ambiguous = np.flatnonzero(k == _AMBIGUOUS)
        if ambiguous.size:
            k[ambiguous] = np.searchsorted(self.thresholds[0], u[ambiguous], side="right")
        return k.reshape(shape)

    def _search(self, grey: np.ndarray, cell: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Binary search of the outcome within each flagged cell's bracket."""
        row = cell + (cell >> GUIDE_BITS)  # index into bounds, which has one more column per row
        lo = np.take(self.bounds, row).astype(np.intp)
        hi = np.take(self.bounds, row + 1).astype(np.intp)
        base = grey.astype(np.intp) * self.thresholds.shape[1]
        flat = self.thresholds.ravel()
        pending = np.flatnonzero(lo < hi)
        while pending.size:  # most brackets hold one threshold and close after one step
            low, high = lo[pending], hi[pending]
            mid = (low + high) >> 1
            right = flat[base[pending] + mid] <= u[pending]
            lo[pending] = np.where(right, mid + 1, low)
            hi[pending] = np.where(right, high, mid)
            pending = pending[lo[pending] < hi[pending]]
        return lo


def uniform_u32(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` independent uniform 32-bit integers: the generator's raw 64-bit output split in halves."""
    raw = rng.bit_generator.random_raw((count + 1) // 2)
    return raw.view(np.uint32)[:count]
