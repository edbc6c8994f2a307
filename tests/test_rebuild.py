"""Rebuilding into an existing folder: a build resumes exactly itself, or refuses; stale shards never survive."""

import json

import numpy as np
import pytest
from conftest import require  # noqa: E402
from data_fixtures import write_medmnist

from hf_robustmed.cli import main
from hf_robustmed.data import build_benchmark, load_medmnist
from hf_robustmed.data.benchmarks import medmnist_c_jobs
from hf_robustmed.data.builder import build_fingerprint

datasets = require("datasets")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))


def load(folder, config, cache):
    # A fresh cache per load: datasets' cache would otherwise serve an earlier load of the same path.
    return datasets.load_dataset(str(folder), config, split="test", cache_dir=str(cache))


def pixelate_jobs(root, size=28):
    return medmnist_c_jobs(root, datasets=["bloodmnist"], corruptions=["pixelate"], severities=(2,), size=size)


def test_new_pixels_same_count_refuse_then_overwrite(tmp_path):
    root, out = tmp_path / "src", tmp_path / "out"
    root.mkdir()
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, seed=1)
    first = build_benchmark(pixelate_jobs(root), out, progress=False)
    assert build_fingerprint(out) == first.fingerprint
    again = build_benchmark(pixelate_jobs(root), out, progress=False)  # the same build: complete, nothing to do
    assert (again.fingerprint, again.shards_written) == (first.fingerprint, 0)

    write_medmnist(root, "bloodmnist", rgb=True, classes=8, seed=7)  # same counts, other pixels
    with pytest.raises(ValueError, match=r"bloodmnist/test: source content.*overwrite=True"):
        build_benchmark(pixelate_jobs(root), out, progress=False)
    assert build_fingerprint(out) == first.fingerprint  # refused: the old build is untouched

    rebuilt = build_benchmark(pixelate_jobs(root), out, progress=False, overwrite=True)
    assert rebuilt.fingerprint != first.fingerprint and rebuilt.shards_skipped == 0
    assert build_fingerprint(out) == rebuilt.fingerprint
    rows = load(out, "bloodmnist-clean", tmp_path / "cache")
    np.testing.assert_array_equal(
        np.stack([np.asarray(r["image"]) for r in rows]), load_medmnist("bloodmnist", size=28, root=root).images[:]
    )


def test_more_rows_with_small_shards_leave_no_stale_shard(tmp_path):
    root, out = tmp_path / "src", tmp_path / "out"
    root.mkdir()
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, counts=(2, 2, 10), seed=1)
    build_benchmark(pixelate_jobs(root), out, shard_rows=4, progress=False)
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, counts=(2, 2, 14), seed=1)
    with pytest.raises(ValueError, match="rows"):
        build_benchmark(pixelate_jobs(root), out, shard_rows=4, progress=False)
    build_benchmark(pixelate_jobs(root), out, shard_rows=4, progress=False, overwrite=True)
    assert sorted(p.name for p in (out / "bloodmnist-clean").iterdir()) == [
        f"test-{i:05d}-of-00004.parquet" for i in range(4)
    ]
    assert len(load(out, "bloodmnist-pixelate-2", tmp_path / "cache")) == 14
    manifest = json.loads((out / "benchmark.json").read_text())
    assert manifest["configs"]["bloodmnist-clean"] == {"test": 14}
    assert "bloodmnist-clean" in (out / "README.md").read_text()


def test_other_size_into_a_built_folder(tmp_path, capsys):
    root, out = tmp_path / "src", tmp_path / "out"
    root.mkdir()
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, size=28, seed=1)
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, size=64, seed=1)
    args = [
        "build",
        "medmnist-c",
        "--source-root",
        str(root),
        "--datasets",
        "bloodmnist",
        "--corruptions",
        "pixelate",
        "--severities",
        "2",
        "-o",
        str(out),
    ]
    assert main([*args, "--size", "28"]) == 0
    assert main([*args, "--size", "64"]) == 2
    error = capsys.readouterr().err
    assert "image_shape" in error and "--overwrite" in error  # names the difference and the way out
    assert main([*args, "--size", "64", "--overwrite"]) == 0
    manifest = json.loads((out / "benchmark.json").read_text())
    assert manifest["settings"]["sources"][0]["image_shape"] == [64, 64, 3]
    rows = load(out, "bloodmnist-pixelate-2", tmp_path / "cache")
    assert {np.asarray(r["image"]).shape for r in rows} == {(64, 64, 3)}


def test_refusal_message_and_foreign_folders(tmp_path):
    root, out = tmp_path / "src", tmp_path / "out"
    root.mkdir()
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, seed=1)
    build_benchmark(pixelate_jobs(root), out, progress=False)
    with pytest.raises(ValueError, match=r"differences: seed\b.*new folder.*--overwrite"):
        build_benchmark(pixelate_jobs(root), out, seed=3, progress=False)
    foreign = tmp_path / "foreign"
    (foreign / "x").mkdir(parents=True)
    (foreign / "x" / "test-00000-of-00001.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match="not a folder of an hf-robustmed build"):
        build_benchmark(pixelate_jobs(root), foreign, progress=False, overwrite=True)
    with pytest.raises(ValueError, match="no complete benchmark build"):
        build_fingerprint(foreign)


def test_card_states_the_minimum_datasets_version(tmp_path):
    root, out = tmp_path / "src", tmp_path / "out"
    root.mkdir()
    write_medmnist(root, "chestmnist", rgb=False, classes=14, multilabel=True, seed=3)
    build_benchmark(
        medmnist_c_jobs(root, datasets=["chestmnist"], corruptions=["pixelate"], severities=(1,), size=28),
        out,
        progress=False,
    )
    assert "datasets>=4.0" in (out / "README.md").read_text()


def test_a_build_killed_while_publishing_is_completed_by_a_rerun(tmp_path, monkeypatch):
    from pathlib import Path

    root = tmp_path / "src"
    root.mkdir()
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, seed=1)
    jobs = lambda: medmnist_c_jobs(root, datasets=["bloodmnist"], corruptions=["pixelate"], size=28)  # noqa: E731
    build_benchmark(jobs(), tmp_path / "reference", shard_rows=2, progress=False)
    renames = []
    real_rename = Path.rename

    def rename_once(self, target):
        if renames:
            raise KeyboardInterrupt  # killed after the first config folder went into place
        renames.append(target)
        return real_rename(self, target)

    out = tmp_path / "out"
    monkeypatch.setattr(Path, "rename", rename_once)
    with pytest.raises(KeyboardInterrupt):
        build_benchmark(jobs(), out, shard_rows=2, progress=False)
    monkeypatch.setattr(Path, "rename", real_rename)
    assert not (out / "benchmark.json").exists() and len(list(out.glob("*/*.parquet"))) == 3
    with pytest.raises(ValueError, match="no complete benchmark build"):
        build_fingerprint(out)
    rerun = build_benchmark(jobs(), out, shard_rows=2, progress=False)
    assert rerun.shards_written == 0

    def tree(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert tree(out) == tree(tmp_path / "reference")
