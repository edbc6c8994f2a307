"""Public API of the corruption engine: :func:`corrupt`, :func:`corrupt_batch`, :func:`iter_corrupt` and listings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .._workers import forkable, single_threaded_worker, worker_context
from ._common import pil_luma as _luma
from .registry import Op, get_op, length_scale
from .seeding import Key, check_severity, sample_rng
from .suites import SUITES, get_suite

ImageLike = np.ndarray | Image.Image

MIN_SIDE = 8

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
    entry = get_suite(suite).entry(name)
    severity = check_severity(severity)
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
    get_suite(suite).entry(name)
    check_severity(severity)
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
