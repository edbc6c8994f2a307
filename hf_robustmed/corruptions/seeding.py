"""What a sample's random draws depend on: its severity, its key, and the seed, mixed into one generator.

A draw never depends on call order, batch composition or worker count: :func:`sample_rng` is a function of
(seed, key, corruption, severity) only, and :func:`stable_int` hashes text the same way in every process.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

Key = int | str | tuple
SEVERITIES = (1, 2, 3, 4, 5)


def check_severity(severity: Any) -> int | float:
    """A validated severity: an int in 1..5, or a non-integral float in (1, 5) (an integral float becomes the int).

    Raises:
        ValueError: On a bool, a non-number, or a value outside [1, 5] (NaN and infinities included).
    """
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer, float, np.floating)):
        raise ValueError(f"severity must be an integer in 1..5 or a float in [1, 5], got {severity!r}")
    if isinstance(severity, (int, np.integer)):
        if int(severity) not in SEVERITIES:
            raise ValueError(f"severity must be in 1..5, got {severity}")
        return int(severity)
    value = float(severity)
    if not 1.0 <= value <= 5.0:  # NaN fails this too
        raise ValueError(f"severity must be in 1..5 (a float in [1, 5] for a continuous intensity), got {severity!r}")
    return int(value) if value.is_integer() else value


def _severity_words(severity: int | float) -> list[int]:
    """Seed words of a validated severity: the integer itself, or a marker and the float's 64 bits."""
    if isinstance(severity, int):
        return [severity]
    return [len(SEVERITIES) + 1, int(np.float64(severity).view(np.uint64))]


def stable_int(text: str) -> int:
    """A 64-bit integer from text that is the same in every process and Python version (never ``hash()``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def key_words(key: Key) -> list[int]:
    """Seed words of a sample key: a type marker, then the int, the text's :func:`stable_int`, or a tuple's
    length and its parts' words.

    Raises:
        ValueError: On a bool, a negative int, or anything but an int, str or tuple of them.
    """
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"sample key must be an int, str or tuple of them, got {key!r}")
    if isinstance(key, (int, np.integer)):
        if key < 0:
            raise ValueError(f"sample key must be non-negative, got {key}")
        return [0, int(key)]
    if isinstance(key, str):
        return [1, stable_int(key)]
    if isinstance(key, tuple):
        return [2, len(key)] + [word for part in key for word in key_words(part)]
    raise ValueError(f"sample key must be an int, str or tuple of them, got {type(key).__name__}")


def sample_rng(seed: int, key: Key, corruption: str, severity: int | float) -> np.random.Generator:
    """The generator of one sample's draws: a function of (seed, key, corruption, severity) only.

    It never depends on call order, batch composition or worker count, so any shard of a benchmark can be
    (re)computed alone with byte-identical results. A float severity (continuous intensity) has its own stream;
    an integral one is the integer's.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    entropy = [int(seed), stable_int(corruption), *_severity_words(check_severity(severity)), *key_words(key)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
