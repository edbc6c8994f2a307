"""Public API of the corruption engine: :func:`corrupt`, :func:`corrupt_batch`, :func:`iter_corrupt` and listings."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .._workers import forkable, single_threaded_worker, worker_context
from ._common import pil_luma as _luma
from .registry import Op, get_op, length_scale
from .suites import SUITES, Suite, SuiteEntry, get_suite

Key = int | str | tuple
ImageLike = np.ndarray | Image.Image

MIN_SIDE = 8
SEVERITIES = (1, 2, 3, 4, 5)

# Pillow modes converted before corrupting; 16-bit and float modes are refused (their scaling is the caller's call).
_PIL_CONVERSIONS = {"1": "L", "P": "RGBA", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}


def list_suites() -> list[str]:
    """Names of the available suites (``imagenet-c``, ``medimeta-c``, ``medmnist-c/<flag>`` …)."""
    return list(SUITES)


def list_corruptions(suite: str | None = None) -> list[str]:
    """Corruption names of ``suite`` in its generation order (``None``: ImageNet-C's)."""
    return list(get_suite(suite).corruptions)


@dataclass(frozen=True)
class CorruptionInfo:
    """A corruption of a suite, for tables and cards."""

    name: str
    op: str
    category: str
    random: bool
    params: tuple
    param_doc: str
    ancestor: str


def describe_corruptions(suite: str | None = None) -> list[CorruptionInfo]:
    """Every corruption of ``suite`` with its operation and five parameters."""
    rows = []
    for name, entry in get_suite(suite).corruptions.items():
        op = get_op(entry.op)
        rows.append(CorruptionInfo(name, op.name, op.category, op.random, entry.params, op.param_doc, op.ancestor))
    return rows


def _entry(suite: Suite, name: str) -> SuiteEntry:
    try:
        return suite.corruptions[name]
    except KeyError:
        elsewhere = [s.name for s in SUITES.values() if name in s.corruptions]
        hint = (
            f" ({name!r} exists in: {', '.join(elsewhere[:4])}{' …' if len(elsewhere) > 4 else ''})"
            if elsewhere
            else ""
        )
        raise ValueError(
            f"unknown corruption {name!r} for suite {suite.name!r}{hint}; valid: {', '.join(suite.corruptions)}"
        ) from None


def _check_severity(severity: Any) -> int | float:
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


def _stable_int(text: str) -> int:
    """A 64-bit integer from text that is the same in every process and Python version (never ``hash()``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def _key_words(key: Key) -> list[int]:
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"sample key must be an int, str or tuple of them, got {key!r}")
    if isinstance(key, (int, np.integer)):
        if key < 0:
            raise ValueError(f"sample key must be non-negative, got {key}")
        return [0, int(key)]
    if isinstance(key, str):
        return [1, _stable_int(key)]
    if isinstance(key, tuple):
        return [2, len(key)] + [word for part in key for word in _key_words(part)]
    raise ValueError(f"sample key must be an int, str or tuple of them, got {type(key).__name__}")


def sample_rng(seed: int, key: Key, corruption: str, severity: int | float) -> np.random.Generator:
    """The generator of one sample's draws: a function of (seed, key, corruption, severity) only.

    It never depends on call order, batch composition or worker count, so any shard of a benchmark can be
    (re)computed alone with byte-identical results. A float severity (continuous intensity) has its own stream;
    an integral one is the integer's.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    entropy = [int(seed), _stable_int(corruption), *_severity_words(_check_severity(severity)), *_key_words(key)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def _as_array(image: ImageLike) -> np.ndarray:
    if isinstance(image, Image.Image):
        mode = image.mode
        if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            raise ValueError(
                f"PIL image of mode {mode!r} (16-bit or float) is not supported: scale it to 8 bits first, "
                "e.g. np.uint8(np.asarray(img) / max_value * 255)"
            )
        image = image.convert(_PIL_CONVERSIONS.get(mode, mode)) if mode in _PIL_CONVERSIONS else image
        return np.asarray(image)
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array or a PIL image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must have dtype uint8, got {image.dtype}; convert it to 8 bits first")
    return image


def _split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour part (H×W×1 or H×W×3) and alpha (or ``None``) of a validated image."""
    if array.ndim == 2:
        colour, alpha = array[..., None], None
    elif array.ndim == 3 and array.shape[2] in (1, 3):
        colour, alpha = array, None
    elif array.ndim == 3 and array.shape[2] in (2, 4):
        colour, alpha = array[..., :-1], array[..., -1:]
    else:
        raise ValueError(f"image must be H×W or H×W×C with C in 1..4, got shape {array.shape}")
    if min(array.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image sides must be at least {MIN_SIDE} px, got {array.shape[0]}×{array.shape[1]}")
    return np.ascontiguousarray(colour), alpha


def pil_luma(rgb: np.ndarray) -> np.ndarray:
    """Pillow's ``convert('L')`` of an H×W×3 uint8 array, bit-exact, as H×W×1."""
    return _luma(rgb)[..., None]


def format_param(value: object) -> str:
    """A severity parameter as a short string for tables (zoom-factor lists as ``first…last (count, step)``)."""
    if isinstance(value, tuple) and len(value) > 4 and all(isinstance(v, float) for v in value):
        step = value[1] - value[0]
        return f"{value[0]:g}…{value[-1]:g} ({len(value)}, step {step:.2g})"
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _run(op: Op, colour: np.ndarray, param: Any, rng: np.random.Generator | None) -> np.ndarray:
    scale = length_scale(*colour.shape[:2])
    if colour.shape[2] == 3 or op.grey_native:
        return op.fn(colour, param, rng, scale)
    # MedMNIST-C's grey handling: replicate to RGB, corrupt, back to one channel with PIL luma.
    return pil_luma(op.fn(np.repeat(colour, 3, axis=2), param, rng, scale))


def corrupt(
    image: ImageLike,
    name: str,
    severity: int | float,
    *,
    suite: str | None = None,
    seed: int = 0,
    key: Key = 0,
) -> np.ndarray:
    """Corrupts one image.

    Args:
        image: ``H×W`` or ``H×W×C`` uint8 array (C = 1, 3, or 2/4 with alpha, which is kept) or a PIL image.
        name: Corruption name of the suite (see :func:`list_corruptions`).
        severity: 1 (mildest) to 5; a float in [1, 5] is a continuous intensity, each parameter interpolated
            between the neighbouring severities (rules: :data:`~hf_robustmed.corruptions.suites.INTERPOLATION`);
            an integral float k gives exactly severity k's output.
        suite: Parameter set, e.g. ``"medmnist-c/bloodmnist"`` or ``"medimeta-c"``; ``None`` for ImageNet-C.
        seed: Base seed of the random draws.
        key: The sample's identity (its index, or a string/tuple such as ``("oct", "test", 17)``). The draws
            depend only on (seed, key, corruption, severity).

    Returns:
        uint8 array of the input's shape (a PIL image comes back as its array).

    Raises:
        ValueError: On an unknown suite or corruption, a severity outside [1, 5] (or NaN) or an unsupported image.
    """
    entry = _entry(get_suite(suite), name)
    severity = _check_severity(severity)
    array = _as_array(image)
    colour, alpha = _split_channels(array)
    op = get_op(entry.op)
    rng = sample_rng(seed, key, name, severity) if op.random else None
    out = _run(op, colour, entry.param_at(severity), rng)
    if alpha is not None:
        out = np.concatenate([out, alpha], axis=2)
    return out.reshape(array.shape)


# -- many images ---------------------------------------------------------------------------------------------------


def _corrupt_chunk(job: tuple) -> list[np.ndarray]:
    images, keys, name, severity, suite, seed = job
    return [corrupt(img, name, severity, suite=suite, seed=seed, key=k) for img, k in zip(images, keys, strict=True)]


def iter_corrupt(
    images: Iterable[ImageLike],
    name: str,
    severity: int,
    *,
    suite: str | None = None,
    seed: int = 0,
    keys: Iterable[Key] | None = None,
    num_workers: int = 0,
    chunk_size: int = 32,
) -> Iterator[np.ndarray]:
    """Lazily corrupts a stream of images, in order, optionally in worker processes.

    Args:
        images: Images (arrays or PIL images); consumed lazily, ``chunk_size × (2·workers)`` at a time at most.
        name, severity, suite, seed: As for :func:`corrupt`.
        keys: Sample keys, one per image; default the position in the stream (0, 1, …).
        num_workers: Worker processes; 0 works in this process. Results do not depend on it.
        chunk_size: Images sent to a worker at once.

    Yields:
        Corrupted images in input order.
    """
    _entry(get_suite(suite), name)
    _check_severity(severity)
    key_iter = iter(keys) if keys is not None else _count()
    if num_workers <= 0:
        for image in images:
            yield corrupt(image, name, severity, suite=suite, seed=seed, key=next(key_iter))
        return
    jobs = _chunks(images, key_iter, chunk_size, (name, severity, suite, seed))
    with ProcessPoolExecutor(num_workers, mp_context=worker_context(), initializer=single_threaded_worker) as pool:
        pending: list = []
        for index, job in enumerate(jobs):
            with forkable() if index == 0 else contextlib.nullcontext():  # the first submit forks the workers
                pending.append(pool.submit(_corrupt_chunk, job))
            if len(pending) >= 2 * num_workers:
                yield from pending.pop(0).result()
        for future in pending:
            yield from future.result()


def corrupt_batch(
    images: Sequence[ImageLike] | np.ndarray,
    name: str,
    severity: int,
    *,
    suite: str | None = None,
    seed: int = 0,
    keys: Sequence[Key] | None = None,
    num_workers: int = 0,
    chunk_size: int = 32,
) -> np.ndarray | list[np.ndarray]:
    """Corrupts many images; see :func:`iter_corrupt`.

    Returns:
        A stacked ``N×…`` array when ``images`` is an array, else a list of arrays.
    """
    if keys is not None and len(keys) != len(images):
        raise ValueError(f"got {len(keys)} keys for {len(images)} images")
    out = list(
        iter_corrupt(
            images, name, severity, suite=suite, seed=seed, keys=keys, num_workers=num_workers, chunk_size=chunk_size
        )
    )
    if isinstance(images, np.ndarray):
        return np.stack(out) if out else np.empty_like(images)
    return out


def _count() -> Iterator[int]:
    i = 0
    while True:
        yield i
        i += 1


def _chunks(images: Iterable[ImageLike], keys: Iterator[Key], size: int, args: tuple) -> Iterator[tuple]:
    batch, batch_keys = [], []
    for image in images:
        batch.append(image)
        batch_keys.append(next(keys))
        if len(batch) == size:
            yield (batch, batch_keys, *args)
            batch, batch_keys = [], []
    if batch:
        yield (batch, batch_keys, *args)
