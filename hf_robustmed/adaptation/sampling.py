"""Few-shot sampling: stratified fractions of a split and K shots per class, seeded, saved as manifests.

Each class's rows are put in one seeded random order and a sample takes a prefix of it, so samples are nested:
the 10 % sample is inside the 30 % one, 5 shots inside 10 shots (same seed). A part of the pool can be held out for
model selection and early stopping (never the test split). The chosen rows are written as a JSON manifest so that
every method can be trained on exactly the same images.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_path


def _class_orders(labels: np.ndarray, seed: int) -> dict[int, np.ndarray]:
    """For each class, its row indices in a seeded random order (independent of the other classes)."""
    labels = np.asarray(labels).reshape(-1)
    return {
        int(c): np.random.default_rng([seed, int(c)]).permutation(np.flatnonzero(labels == c))
        for c in np.unique(labels)
    }


def stratified_fraction(labels: Sequence[int] | np.ndarray, fraction: float, seed: int = 42) -> np.ndarray:
    """Sorted row indices of a stratified ``fraction`` of the rows: ``ceil(fraction · n_c)`` of each class c.

    Rounding up keeps every class present (the paper's 10 % of a small split would otherwise drop rare classes).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    orders = _class_orders(np.asarray(labels), seed)
    chosen = [order[: math.ceil(fraction * len(order))] for order in orders.values()]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, np.int64)


def k_shot(labels: Sequence[int] | np.ndarray, k: int, seed: int = 42) -> np.ndarray:
    """Sorted row indices of ``k`` rows per class (all of a class's rows when it has fewer)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    orders = _class_orders(np.asarray(labels), seed)
    chosen = [order[:k] for order in orders.values()]
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, np.int64)


def hold_out(
    indices: np.ndarray, labels: Sequence[int] | np.ndarray, fraction: float, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Splits a sample into (train, held-out) rows, stratified, the held-out part for model selection.

    Classes with a single row stay in training.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"hold-out fraction must be in [0, 1), got {fraction}")
    labels = np.asarray(labels).reshape(-1)
    held = []
    for c, order in _class_orders(labels[indices], seed + 1).items():
        if len(order) > 1:
            held.append(indices[order[: min(len(order) - 1, math.floor(fraction * len(order)))]])
    held_out = np.sort(np.concatenate(held)) if held else np.empty(0, np.int64)
    return np.setdiff1d(indices, held_out), held_out


@dataclass
class FewShotManifest:
    """The exact rows a few-shot run trains on, for one dataset split.

    Attributes:
        dataset, split: Where the rows come from (``index`` values of the benchmark's clean config).
        method: ``fraction`` or ``k_shot``; ``amount`` its fraction or K.
        seed: Sampling seed.
        train, holdout: Row indices (source ``index`` values).
    """

    dataset: str
    split: str
    method: str
    amount: float
    seed: int
    train: list[int] = field(default_factory=list)
    holdout: list[int] = field(default_factory=list)

    @classmethod
    def sample(
        cls,
        dataset: str,
        split: str,
        labels,
        indices=None,
        *,
        fraction: float | None = None,
        k: int | None = None,
        holdout: float = 0.0,
        seed: int = 42,
    ) -> FewShotManifest:
        """Samples a split (``labels`` per row; ``indices`` the rows' source indices, default 0..N−1)."""
        if (fraction is None) == (k is None):
            raise ValueError("give exactly one of fraction or k")
        labels = np.asarray(labels).reshape(-1)
        rows = stratified_fraction(labels, fraction, seed) if fraction is not None else k_shot(labels, k, seed)
        train, held = hold_out(rows, labels, holdout, seed)
        source = np.arange(len(labels)) if indices is None else np.asarray(indices)
        return cls(
            dataset,
            split,
            "fraction" if fraction is not None else "k_shot",
            float(fraction if fraction is not None else k),
            seed,
            source[train].astype(int).tolist(),
            source[held].astype(int).tolist(),
        )

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=1))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> FewShotManifest:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"cannot read few-shot manifest {path}: {error}") from None
