"""Worker processes (hf_robustmed/_workers.py): they end with their parent, even when it is killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import os, time
from concurrent.futures import ProcessPoolExecutor
from hf_robustmed._workers import single_threaded_worker, worker_context

def pid_after_nap():
    time.sleep(0.2)
    return os.getpid()

pool = ProcessPoolExecutor(2, mp_context=worker_context(), initializer=single_threaded_worker)
pids = {task.result() for task in [pool.submit(pid_after_nap) for _ in range(4)]}  # both workers busy
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for an init that does not reap counts as ended)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\\tZ" not in next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc; workers are forked on Linux only")
def test_workers_exit_when_their_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "workers outlived their killed parent"
    finally:
        parent.kill()
        for pid in workers if "workers" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
