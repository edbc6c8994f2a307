"""Worker processes that any script can start: forked where the platform allows, with OpenCV's threads stopped.

Forked workers start quickly and need no ``if __name__ == "__main__":`` guard (``spawn`` and ``forkserver`` re-run
the main module in every worker). A child forked while OpenCV's thread pool runs can deadlock in OpenCV, so the
pool is stopped while workers start (:func:`forkable`). Elsewhere than Linux, workers are spawned and a script
keeps its guard. A worker whose parent dies (a killed build) exits instead of waiting forever for work
(:func:`single_threaded_worker`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator

PARENT_CHECK_SECONDS = 0.5


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
    """Worker initialiser: one OpenCV thread per worker (the workers are the parallelism), and an exit when the
    parent process dies.

    ``concurrent.futures`` workers otherwise outlive a parent killed with SIGKILL, idle but holding memory,
    forever (DataLoader workers have their own watchdog; this one is cheap enough to run in both).
    """
    import cv2

    cv2.setNumThreads(1)
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), name="hf-robustmed-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Exits this process as soon as ``parent`` is no longer its parent (it died and the process was re-parented)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)
