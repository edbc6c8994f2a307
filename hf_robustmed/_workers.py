"""Worker processes that any script can start: forked where the platform allows, with OpenCV's threads stopped.

Forked workers start quickly and need no ``if __name__ == "__main__":`` guard (``spawn`` and ``forkserver`` re-run
the main module in every worker). A child forked while OpenCV's thread pool runs can deadlock in OpenCV, so the
pool is stopped while workers start (:func:`forkable`). Elsewhere than Linux, workers are spawned and a script
keeps its guard.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from collections.abc import Iterator


def worker_context() -> multiprocessing.context.BaseContext:
    """``fork`` on Linux, ``spawn`` elsewhere."""
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


@contextlib.contextmanager
def forkable() -> Iterator[None]:
    """Makes this process safe to fork workers from for the duration of the block: OpenCV's thread pool is stopped
    and its size restored after."""
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def single_threaded_worker(*_: object) -> None:
    """Worker initialiser: one OpenCV thread per worker (the workers are the parallelism)."""
    import cv2

    cv2.setNumThreads(1)
