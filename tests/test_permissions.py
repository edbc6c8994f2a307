"""Written files follow the umask (as ``open()`` would), so colleagues, shared folders and Spaces can read them."""

import os
import stat

import numpy as np
import pytest
from conftest import require
from data_fixtures import write_medmnist

from hf_robustmed.files import atomic_path, write_image


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writes_follow_the_umask(umask, tmp_path):
    with atomic_path(tmp_path / "result.json") as tmp:
        tmp.write_text("{}")
    assert mode(tmp_path / "result.json") == 0o666 & ~umask
    write_image(np.zeros((4, 4), np.uint8), tmp_path / "figure.png")
    assert mode(tmp_path / "figure.png") == 0o666 & ~umask


def test_a_built_benchmark_is_readable_per_the_umask(umask, tmp_path, monkeypatch):
    require("datasets")
    from hf_robustmed.data import build_benchmark
    from hf_robustmed.data.benchmarks import medmnist_c_jobs

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "src"
    root.mkdir()
    write_medmnist(root, "pneumoniamnist", rgb=False, classes=2, seed=2)
    out = tmp_path / "out"
    jobs = medmnist_c_jobs(root, datasets=["pneumoniamnist"], corruptions=["pixelate"], severities=(1,), size=28)
    build_benchmark(jobs, out, shard_rows=2, progress=False)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"README.md", "benchmark.json", "test-00000-of-00003.parquet"}
    modes = {p.relative_to(out).as_posix(): mode(p) for p in files}
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)
    assert {mode(p) for p in out.rglob("*") if p.is_dir()} == {0o777 & ~umask}
