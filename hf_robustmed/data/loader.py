"""The evaluation's input pipeline: row ranges read and decoded (and corrupted) in ``DataLoader`` workers.

Workers hand over uint8 tensors (``N×C×H×W``, C = 1 or 3); resizing and normalisation happen batched where the
model runs (:class:`hf_robustmed.models.preprocess.ImageTransform`). Batches come back in the order of the
items, whatever the worker count (``DataLoader`` returns worker results in sampler order).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._workers import single_threaded_worker, worker_context
from .reader import RowBatch, RowSource


@dataclass(frozen=True)
class BatchItem:
    """One batch to read: rows ``start:stop`` of source ``source`` (an index into the loader's sources)."""

    source: int
    start: int
    stop: int


def share(n: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous rows ``[start, stop)`` of ``n`` that process ``rank`` of ``world`` reads."""
    return n * rank // world, n * (rank + 1) // world


def batch_items(source: int, start: int, stop: int, batch_size: int) -> list[BatchItem]:
    """Rows ``start:stop`` of a source cut into batches."""
    return [BatchItem(source, lo, min(stop, lo + batch_size)) for lo in range(start, stop, batch_size)]


def default_num_workers(processes: int = 1) -> int:
    """The CPU cores available to each of ``processes`` processes on this machine (0 on a single core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    per_process = cores // max(1, processes)
    return per_process if per_process > 1 else 0


def images_tensor(images: Sequence[np.ndarray] | np.ndarray, *, channels_first: bool = False):
    """uint8 ``N×C×H×W`` of same-sized images (grey as C = 1 unless mixed with RGB), else a list of ``C×H×W``.

    ``images``: grey ``H×W`` and RGB ``H×W×3`` images (``3×H×W`` if ``channels_first``), or one array of them.
    """
    import torch

    rgb_axis = 0 if channels_first else -1
    if isinstance(images, np.ndarray):  # already one array (decoded straight into it, or a source's rows)
        array = images if images.flags.writeable else images.copy()
        return _nchw(torch.from_numpy(array), channels_first)
    if any(image.ndim == 3 for image in images) and any(image.ndim == 2 for image in images):
        images = [np.stack([image] * 3, rgb_axis) if image.ndim == 2 else image for image in images]
    if len({image.shape for image in images}) == 1:
        return _nchw(torch.from_numpy(np.stack(images)), channels_first)
    return [_nchw(torch.from_numpy(np.array(image)[None]), channels_first)[0] for image in images]


def _nchw(batch, channels_first: bool = False):
    """``N×H×W`` (grey) or ``N×H×W×C`` uint8 (``N×C×H×W`` if ``channels_first``) → contiguous ``N×C×H×W`` (the
    float conversion is quicker on it)."""
    if batch.ndim == 3:
        return batch[:, None]
    return batch.contiguous() if channels_first else batch.permute(0, 3, 1, 2).contiguous()


PREFETCH = 4  # batches each worker reads ahead


class BatchDataset:
    """A map-style dataset whose item *i* is the whole batch ``items[i]`` (use with ``batch_size=None``).

    Workers hand over uint8 images: a quarter of the bytes of float pixels through shared memory, and the
    preprocessing then runs batched where the model is (measured on the CPU too: about 2.5x the marginal rate of
    float pixels made in the workers).

    A source may give several images per row: a :class:`~hf_robustmed.data.reader.CorruptedGroup` gives each
    member's images of the rows, member-major, with the rows' labels and indices once.
    """

    def __init__(self, sources: Sequence[RowSource], items: Sequence[BatchItem]):
        self.sources, self.items = list(sources), list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        import torch

        item = self.items[i]
        # RGB decoded straight into planes where the source can (stored PNGs): no HWC → CHW copy afterwards
        batch: RowBatch = self.sources[item.source].read(item.start, item.stop, channels_first=True)
        return {
            "item": i,
            "images": images_tensor(batch.images, channels_first=batch.channels_first),
            "labels": torch.as_tensor(np.asarray(batch.labels, dtype=np.int64)),
            "indices": torch.as_tensor(np.asarray(batch.indices, dtype=np.int64)),
        }


def make_loader(
    sources: Sequence[RowSource], items: Sequence[BatchItem], *, num_workers: int, pin_memory: bool = False
):
    """A ``DataLoader`` yielding the items' batches in order (dicts of ``item``, uint8 ``images``, ``labels``,
    ``indices``), read by ``num_workers`` workers (0: in this process) with prefetch. Iterate it inside
    :func:`hf_robustmed._workers.forkable` (the workers are forked when iteration starts)."""
    from torch.utils.data import DataLoader

    return DataLoader(
        BatchDataset(sources, items),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=single_threaded_worker if num_workers else None,
        multiprocessing_context=worker_context() if num_workers else None,
        prefetch_factor=PREFETCH if num_workers else None,
    )
