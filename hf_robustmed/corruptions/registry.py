"""Registry of corruption operations.

An *operation* is an algorithm (``pil_brightness``, ``hsv_brightness``, ``motion_blur`` ...). A *suite*
(see :mod:`hf_robustmed.corruptions.suites`) binds public corruption names to operations and gives each one five
severity parameters. Operations register themselves with :func:`register_op`, timm-style, so adding one is a
single decorated function; ``hf_robustmed.corruptions`` imports the modules of the built-in operations (this
registry imports none of them).

Every operation has the signature ``fn(image, param, rng, scale) -> image`` where

* ``image`` is a ``H×W×C`` uint8 array (C = 3, or C = 1 for channel-wise operations on grey images),
* ``param`` is the severity parameter from the suite,
* ``rng`` is a :class:`numpy.random.Generator` (``None`` for deterministic operations),
* ``scale`` is :func:`length_scale` of the image, by which operations multiply parameters given in pixels at
  224 px (1 at 224 px, where the operations are exactly the references').
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

OpFn = Callable[[np.ndarray, Any, "np.random.Generator | None", float], np.ndarray]

REFERENCE_SIZE = 224
LENGTH_EXPONENT = 0.5


def length_scale(height: int, width: int) -> float:
    """Factor for lengths given in pixels at 224 px: ``(min(H, W) / 224) ** 0.5``.

    A linear factor would be the physical correspondence (corrupt at 224, then resize), but it makes most blurs
    sub-pixel at 28 px, where every severity then looks the same. The square root reproduces the ratios that
    CIFAR-10-C's authors chose by hand for 32-px images (Gaussian blur σ 1 → 0.4, motion blur σ 3 → 1, about
    √(32/224) ≈ 0.38) and keeps the five severities distinct at MedMNIST's 28 px.
    """
    return (min(height, width) / REFERENCE_SIZE) ** LENGTH_EXPONENT


@dataclass(frozen=True)
class Op:
    """A registered corruption algorithm.

    Attributes:
        name: Registry key.
        fn: The implementation, ``fn(image, param, rng, scale)``.
        category: One of ``noise``, ``blur``, ``digital``, ``color``, ``artefact``, ``weather``.
        random: Whether the operation draws random numbers (and so needs a seeded generator).
        grey_native: Whether a grey image replicated to RGB comes out as three equal channels that equal the
            operation applied to the single grey channel. Then MedMNIST-C's grey handling (replicate, corrupt,
            PIL luma) is exactly the one-channel operation, and grey images skip the 3× detour. Operations with
            independent per-channel noise or colour (noise, saturation, coloured text, JPEG's chroma) are not.
        param_doc: What the severity parameter means.
        ancestor: Where the definition comes from.
    """

    name: str
    fn: OpFn
    category: str
    random: bool
    grey_native: bool
    param_doc: str
    ancestor: str


_OPS: dict[str, Op] = {}


def register_op(
    name: str,
    *,
    category: str,
    random: bool,
    grey_native: bool,
    param_doc: str,
    ancestor: str,
) -> Callable[[OpFn], OpFn]:
    """Decorator registering ``fn`` as the operation ``name``."""

    def decorator(fn: OpFn) -> OpFn:
        if name in _OPS:
            raise ValueError(f"corruption operation {name!r} is already registered")
        _OPS[name] = Op(name, fn, category, random, grey_native, param_doc, ancestor)
        return fn

    return decorator


def get_op(name: str) -> Op:
    """Returns the operation registered as ``name``."""
    try:
        return _OPS[name]
    except KeyError:
        raise ValueError(f"unknown corruption operation {name!r}; registered: {sorted(_OPS)}") from None


def list_ops() -> list[str]:
    """Names of all registered operations."""
    return sorted(_OPS)
