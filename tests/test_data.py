"""Sources in their real formats → benchmark folders → plain ``datasets.load_dataset``, offline."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require  # noqa: E402
from data_fixtures import (
    write_image_folder,
    write_medimeta,
    write_medimeta_c_release,
    write_medmnist,
    write_medmnist_c_release,
)

from hf_robustmed.cli import main
from hf_robustmed.corruptions import corrupt
from hf_robustmed.data import (
    NpzArray,
    build_benchmark,
    load_image_dataset,
    load_medimeta,
    load_medimeta_c_npz,
    load_medmnist,
    load_medmnist_c_npz,
)
from hf_robustmed.data.benchmarks import medimeta_c_jobs, medmnist_c_jobs
from hf_robustmed.data.builder import BuildJob
from hf_robustmed.data.manifest import STAGING

datasets = require("datasets")

OCT_LABELS = {0: "CNV", 1: "DME", 2: "DRUSEN", 3: "NORMAL"}
PBC_LABELS = dict(
    enumerate(
        [
            "neutrophil",
            "eosinophil",
            "basophil",
            "lymphocyte",
            "monocyte",
            "immature granulocyte",
            "erythroblast",
            "platelet",
        ]
    )
)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))


@pytest.fixture
def medmnist_root(tmp_path):
    root = tmp_path / "medmnist"
    root.mkdir()
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, seed=1)
    write_medmnist(root, "pneumoniamnist", rgb=False, classes=2, seed=2)
    write_medmnist(root, "chestmnist", rgb=False, classes=14, multilabel=True, seed=3)
    return root


@pytest.fixture
def medimeta_root(tmp_path):
    root = tmp_path / "medimeta"
    root.mkdir()
    write_medimeta(root, "oct", "disease class", OCT_LABELS, rgb=False, seed=4)
    write_medimeta(root, "pbc", "cell class", PBC_LABELS, rgb=True, seed=5)
    return root


def decoded(example) -> np.ndarray:
    return np.asarray(example["image"])


def load(folder, config, split="test"):
    # datasets' cache key for local Parquet files ignores their content: a folder rebuilt at the same path would
    # be served stale from a shared cache, so each benchmark folder gets its own cache.
    return datasets.load_dataset(str(folder), config, split=split, cache_dir=str(Path(folder).parent / ".hf_cache"))


def test_medmnist_c_build_loads_with_plain_datasets(medmnist_root, tmp_path):
    jobs = medmnist_c_jobs(
        medmnist_root,
        datasets=["bloodmnist", "pneumoniamnist", "chestmnist"],
        corruptions=["pixelate", "gaussian_noise", "bubble"],
        severities=(1, 5),
        size=28,
    )
    report = build_benchmark(jobs, tmp_path / "out", name="MedMNIST-C", shard_rows=2, progress=False)
    # bloodmnist has pixelate and bubble, pneumoniamnist and chestmnist pixelate and gaussian noise
    assert set(report.configs) == {
        "bloodmnist-clean",
        "bloodmnist-pixelate-1",
        "bloodmnist-pixelate-5",
        "bloodmnist-bubble-1",
        "bloodmnist-bubble-5",
        "pneumoniamnist-clean",
        "pneumoniamnist-pixelate-1",
        "pneumoniamnist-pixelate-5",
        "pneumoniamnist-gaussian_noise-1",
        "pneumoniamnist-gaussian_noise-5",
        "chestmnist-clean",
        "chestmnist-pixelate-1",
        "chestmnist-pixelate-5",
        "chestmnist-gaussian_noise-1",
        "chestmnist-gaussian_noise-5",
    }
    for flag in ("bloodmnist", "pneumoniamnist", "chestmnist"):
        source = load_medmnist(flag, "test", size=28, root=medmnist_root)
        clean_images = source.images[:]
        clean = load(tmp_path / "out", f"{flag}-clean")
        assert len(clean) == len(source) == 5
        names = clean.features["label"].feature.names if flag == "chestmnist" else clean.features["label"].names
        assert names == source.class_names
        for config in (c for c in report.configs if c.startswith(flag)):
            rows = load(tmp_path / "out", config)
            corruption, severity = rows[0]["corruption"], rows[0]["severity"]
            for i, row in enumerate(rows):
                expected = (
                    clean_images[i]
                    if corruption == "clean"
                    else corrupt(
                        clean_images[i], corruption, severity, suite=f"medmnist-c/{flag}", key=(flag, "test", i)
                    )
                )
                np.testing.assert_array_equal(decoded(row), expected)
                assert row["index"] == i
                if flag == "chestmnist":
                    assert row["label"] == np.flatnonzero(source.labels[i]).tolist()
                else:
                    assert row["label"] == int(source.labels[i])
    default = datasets.load_dataset(str(tmp_path / "out"), split="test", cache_dir=str(tmp_path / ".hf_cache"))
    assert len(default) == 5
    card = (tmp_path / "out" / "README.md").read_text()
    assert "config_name: bloodmnist-bubble-5" in card and "cc-by-4.0" in card and "MedMNIST-C" in card


def test_medimeta_c_build_with_validation_split_and_rgb_storage(medimeta_root, tmp_path):
    jobs = medimeta_c_jobs(
        medimeta_root, datasets=["oct", "pbc"], corruptions=["zoom_blur", "impulse_noise"], severities=(3,)
    )
    build_benchmark(jobs, tmp_path / "out", name="MediMeta-C", grey="rgb", progress=False)
    source = load_medimeta("oct", "validation", root=medimeta_root)
    assert list(source.indices) == sorted(source.indices)  # MedIMeta's sorted order
    assert source.class_names == ["CNV", "DME", "DRUSEN", "NORMAL"]  # from info.yaml, in index order
    rows = load(tmp_path / "out", "oct-zoom_blur-3", split="validation")
    assert len(rows) == len(source)
    for i, row in enumerate(rows):
        grey = source.images[i : i + 1][0]
        expected = corrupt(
            np.repeat(grey[..., None], 3, 2),
            "zoom_blur",
            3,
            suite="medimeta-c",
            key=("oct", "validation", int(source.indices[i])),
        )
        np.testing.assert_array_equal(decoded(row), expected)
        assert row["index"] == source.indices[i] and row["label"] == int(source.labels[i])
    assert decoded(load(tmp_path / "out", "pbc-clean")[0]).shape == (32, 32, 3)
    assert len(load(tmp_path / "out", "pbc-clean", split="validation")) == 3


def test_published_releases_import(medmnist_root, medimeta_root, tmp_path):
    release = tmp_path / "medmnist_c"
    write_medmnist_c_release(release, medmnist_root / "pneumoniamnist.npz", "pneumoniamnist")
    source = load_medmnist_c_npz(release, "pneumoniamnist", clean_root=medmnist_root, size=28)
    build_benchmark([BuildJob(source, None)], tmp_path / "out", name="MedMNIST-C", progress=False)
    with np.load(release / "pneumoniamnist" / "gaussian_noise.npz") as published:
        stacked = published["test_images"]
    rows = load(tmp_path / "out", "pneumoniamnist-gaussian_noise-4")
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(decoded(row), stacked[3 * 5 + i])  # severity-major: row s·N + i

    oct_test = load_medimeta("oct", "test", root=medimeta_root)
    mm_release = tmp_path / "medimeta_c"
    write_medimeta_c_release(mm_release, oct_test.images[:], np.asarray(oct_test.labels), "oct", "test")
    source = load_medimeta_c_npz(mm_release, "oct", "test", source_root=medimeta_root)
    build_benchmark([BuildJob(source, None)], tmp_path / "out2", name="MediMeta-C", grey="rgb", progress=False)
    with np.load(mm_release / "oct" / "test" / "zoom_blur_severity_2.npz") as published:
        expected = published["images"]
    for i, row in enumerate(load(tmp_path / "out2", "oct-zoom_blur-2")):
        np.testing.assert_array_equal(decoded(row), expected[i])


def test_image_folder_source(tmp_path):
    root = write_image_folder(tmp_path / "folder")
    code = main(
        [
            "build",
            "image-dataset",
            "--source-root",
            str(root),
            "-o",
            str(tmp_path / "out"),
            "--corruptions",
            "contrast",
            "--severities",
            "2",
        ]
    )
    assert code == 0
    source = load_image_dataset("imagefolder", "test", data_dir=str(root))
    rows = load(tmp_path / "out", "folder-contrast-2")
    assert rows.features["label"].names == ["benign", "malignant"] == source.class_names
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(
            decoded(row), corrupt(source.images[i : i + 1][0], "contrast", 2, key=("folder", "test", i))
        )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_worker_count_gives_identical_bytes(medmnist_root, tmp_path):
    def jobs():
        return medmnist_c_jobs(
            medmnist_root, datasets=["bloodmnist"], corruptions=["motion_blur", "stain_deposit"], size=28
        )

    build_benchmark(jobs(), tmp_path / "one", shard_rows=2, progress=False)
    build_benchmark(jobs(), tmp_path / "two", shard_rows=2, num_workers=2, progress=False)
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


BUILD_SCRIPT = """
import sys
from hf_robustmed.data import build_benchmark
from hf_robustmed.data.benchmarks import medmnist_c_jobs
jobs = medmnist_c_jobs(sys.argv[1], datasets=["bloodmnist"], size=28)
build_benchmark(jobs, sys.argv[2], shard_rows=1, progress=False)
"""


def test_killed_build_resumes_to_identical_output(medmnist_root, tmp_path):
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(medmnist_root), str(reference)], check=True)
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(medmnist_root), str(out)])
    deadline = time.time() + 60
    while len(list(out.glob(f"{STAGING}/*/*.parquet"))) < 8 and time.time() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(out.glob(f"{STAGING}/*/*.parquet")))
    expected_total = len(list(reference.glob("*/*.parquet")))
    assert 0 < done_before < expected_total, "the kill should land mid-build"
    # Nothing is loadable until the build is complete: no card, no visible shard or manifest for datasets to find.
    assert not (out / "README.md").exists() and not (out / "benchmark.json").exists()
    assert not list(out.glob("*/*.parquet"))
    with pytest.raises(FileNotFoundError, match="doesn't contain any data files"):
        datasets.load_dataset(str(out), split="test", cache_dir=str(tmp_path / ".cache_default"))
    with pytest.raises((ValueError, FileNotFoundError)):
        datasets.load_dataset(str(out), "bloodmnist-clean", split="test", cache_dir=str(tmp_path / ".cache_named"))
    subprocess.run([sys.executable, "-c", BUILD_SCRIPT, str(medmnist_root), str(out)], check=True)
    assert _tree(out) == _tree(reference)
    assert not (out / STAGING).exists()


def test_truncated_and_inconsistent_sources_fail_clearly(medmnist_root, medimeta_root, tmp_path):
    path = medmnist_root / "bloodmnist.npz"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bloodmnist.npz").write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_medmnist("bloodmnist", "test", size=28, root=broken)
    np.savez(broken / "pneumoniamnist.npz", test_images=np.zeros((4, 28, 28), np.uint8), test_labels=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        load_medmnist("pneumoniamnist", "test", size=28, root=broken)
    with pytest.raises(ValueError, match="unknown MedMNIST dataset 'cifar10'"):
        load_medmnist("cifar10", root=medmnist_root)
    with pytest.raises(ValueError, match="not found"):
        load_medmnist("dermamnist", root=medmnist_root, size=28)
    with pytest.raises(ValueError, match="unknown corruption"):
        medmnist_c_jobs(medmnist_root, datasets=["bloodmnist"], corruptions=["snow"], size=28)
    with pytest.raises(ValueError, match="no task 'Disease'"):
        load_medimeta("oct", root=medimeta_root, task="Disease")
    labels = np.load(medimeta_root / "oct" / "task_labels" / "disease class.npy")
    np.save(medimeta_root / "oct" / "task_labels" / "disease class.npy", labels[:-1])
    with pytest.raises(ValueError, match="labels 8"):
        load_medimeta("oct", root=medimeta_root)
    out = tmp_path / "out"
    assert (
        main(
            [
                "build",
                "medmnist-c",
                "--source-root",
                str(broken),
                "--datasets",
                "bloodmnist",
                "--size",
                "28",
                "-o",
                str(out),
            ]
        )
        == 2
    )
    assert not out.exists() or not list(out.rglob("*.parquet"))


def test_resume_refuses_other_settings(medmnist_root, tmp_path):
    jobs = medmnist_c_jobs(medmnist_root, datasets=["pneumoniamnist"], corruptions=["pixelate"], size=28)
    build_benchmark(jobs, tmp_path / "out", seed=0, progress=False)
    with pytest.raises(ValueError, match="seed"):
        build_benchmark(jobs, tmp_path / "out", seed=1, progress=False)


def test_npz_array_reads_rows_lazily(medmnist_root):
    array = NpzArray(medmnist_root / "bloodmnist.npz", "test_images")
    with np.load(medmnist_root / "bloodmnist.npz") as whole:
        expected = whole["test_images"]
    np.testing.assert_array_equal(array[1:3], expected[1:3])
    np.testing.assert_array_equal(array[3:5], expected[3:5])
    np.testing.assert_array_equal(array[0:2], expected[0:2])  # backwards: reopens
    with pytest.raises(ValueError, match="has no array"):
        NpzArray(medmnist_root / "bloodmnist.npz", "nope")


def test_describe_writes_the_three_figures(medmnist_root, tmp_path):
    jobs = medmnist_c_jobs(medmnist_root, datasets=["bloodmnist"], corruptions=["pixelate", "saturate"], size=28)
    build_benchmark(jobs, tmp_path / "out", progress=False)
    assert main(["describe", str(tmp_path / "out"), "-o", str(tmp_path / "figures")]) == 0
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "bloodmnist_dct_spectrum.png",
        "bloodmnist_gallery.png",
        "bloodmnist_intensity_density.png",
    ]


def test_push_uploads_complete_builds_only(medmnist_root, tmp_path, monkeypatch):
    from unittest import mock

    from huggingface_hub import HfApi

    jobs = medmnist_c_jobs(medmnist_root, datasets=["pneumoniamnist"], corruptions=["pixelate"], size=28)
    build_benchmark(jobs, tmp_path / "out", progress=False)
    with (
        mock.patch.object(HfApi, "create_repo", autospec=True) as create,
        mock.patch.object(HfApi, "upload_folder", autospec=True) as upload,
    ):
        assert main(["push", str(tmp_path / "out"), "me/MedMNIST-C"]) == 0
    assert create.call_args.kwargs["repo_type"] == "dataset"
    assert upload.call_args.kwargs["folder_path"] == str(tmp_path / "out")
    assert 'load_dataset("me/MedMNIST-C"' in (tmp_path / "out" / "README.md").read_text()
    manifest = tmp_path / "out" / "benchmark.json"
    manifest.write_text(manifest.read_text().replace('"complete": true', '"complete": false'))
    assert main(["push", str(tmp_path / "out"), "me/MedMNIST-C"]) == 2


def test_download_checks_md5_and_keeps_no_bad_file(tmp_path, monkeypatch):
    import hashlib
    import io
    import urllib.request

    from hf_robustmed import download as downloads

    payload = b"npz bytes"

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url: Response(payload))
    good = hashlib.md5(payload).hexdigest()
    path = downloads.download("https://zenodo.org/x", tmp_path / "x.npz", good)
    assert path.read_bytes() == payload
    with pytest.raises(ValueError, match="checksum mismatch"):
        downloads.download("https://zenodo.org/y", tmp_path / "y.npz", "0" * 32)
    assert not (tmp_path / "y.npz").exists() and not list(tmp_path.glob(".y.npz*"))


def test_dataset_script_builds_and_pushes(medmnist_root, tmp_path):
    from unittest import mock

    from huggingface_hub import HfApi

    from hf_robustmed.cli import build_script

    script = Path(__file__).resolve().parent.parent / "dataset_scripts" / "build_medmnist_c.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--source-root",
            str(medmnist_root),
            "--datasets",
            "breastmnist",
            "--size",
            "28",
            "-o",
            str(tmp_path / "script_out"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "breastmnist.npz not found" in done.stderr  # the script runs the real CLI

    with (
        mock.patch.object(HfApi, "create_repo", autospec=True),
        mock.patch.object(HfApi, "upload_folder", autospec=True) as upload,
    ):
        code = build_script(
            "medmnist-c",
            [
                "--source-root",
                str(medmnist_root),
                "--datasets",
                "pneumoniamnist",
                "--corruptions",
                "pixelate",
                "--size",
                "28",
                "-o",
                str(tmp_path / "out"),
                "--push-to-hub",
                "me/MedMNIST-C",
            ],
        )
    assert code == 0 and upload.call_args.kwargs["repo_id"] == "me/MedMNIST-C"
    assert (tmp_path / "out" / "pneumoniamnist-pixelate-3").is_dir()


def test_image_size_is_checked_against_the_file_and_info(medimeta_root, tmp_path):
    import yaml

    root = tmp_path / "sized"
    root.mkdir()
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, size=64, seed=1)
    (root / "bloodmnist_64.npz").rename(root / "bloodmnist_224.npz")  # 64-px images under the 224-px name
    with pytest.raises(ValueError, match="must hold 224×224 images, but test_images are 64×64"):
        load_medmnist("bloodmnist", "test", size=224, root=root)
    out = tmp_path / "out"
    assert main(["build", "medmnist-c", "--source-root", str(root), "--datasets", "bloodmnist", "-o", str(out)]) == 2
    assert not out.exists() or not list(out.rglob("*.parquet"))
    info_path = medimeta_root / "oct" / "info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["input_size"] = [1, 224, 224]
    info_path.write_text(yaml.safe_dump(info))
    with pytest.raises(ValueError, match="info.yaml declares 224×224 images, images.hdf5 holds 32×32"):
        load_medimeta("oct", root=medimeta_root)


def test_every_medmnist_size_is_checksummed(tmp_path, monkeypatch):
    import io
    import re
    import urllib.request

    from hf_robustmed.data.medmnist import MEDMNIST_INFO, SIZES

    for info in MEDMNIST_INFO.values():
        assert sorted(info.md5) == sorted(SIZES) and all(re.fullmatch("[0-9a-f]{32}", v) for v in info.md5.values())
    assert len({v for info in MEDMNIST_INFO.values() for v in info.md5.values()}) == len(MEDMNIST_INFO) * len(SIZES)
    # medmnist 3.0.2 INFO["bloodmnist"]["MD5_64"] / ["MD5_128"]
    assert MEDMNIST_INFO["bloodmnist"].md5[64] == "2b94928a2ae4916078ca51e05b6b800b"
    assert MEDMNIST_INFO["bloodmnist"].md5[128] == "adace1e0ed228fccda1f39692059dd4c"
    junk = b"not a zip file!"  # 15 bytes, already at the path and served again by the "server"
    (tmp_path / "bloodmnist_64.npz").write_bytes(junk)

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(junk))}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url: Response(junk))
    with pytest.raises(ValueError, match="checksum mismatch .*bloodmnist_64.npz"):
        load_medmnist("bloodmnist", "test", size=64, root=tmp_path, download_missing=True)


BUILD_SCRIPT = """
import sys
from hf_robustmed.data import build_benchmark
from hf_robustmed.data.benchmarks import medmnist_c_jobs
print("script body ran")
jobs = medmnist_c_jobs(sys.argv[1], datasets=["pneumoniamnist"], corruptions=["pixelate", "gaussian_noise"], size=28)
build_benchmark(jobs, sys.argv[2], num_workers=2, shard_rows=2, progress=False)
"""


def test_build_workers_start_from_a_script_without_a_main_guard(tmp_path):
    """Workers are forked: a script without ``if __name__ == "__main__"`` is not re-run in each worker."""
    write_medmnist(tmp_path, "pneumoniamnist", rgb=False, classes=2, counts=(2, 2, 5))
    script = tmp_path / "build_script.py"
    script.write_text(BUILD_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(tmp_path / "out")], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("script body ran") == 1
    assert (tmp_path / "out" / "benchmark.json").is_file()
