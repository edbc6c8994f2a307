"""What ``hf-robustmed describe`` shows, read by the data layer without the plotting layer."""

import subprocess
import sys

import numpy as np
import pytest
from data_fixtures import write_medmnist

from hf_robustmed.data import build_benchmark
from hf_robustmed.data.benchmarks import medmnist_c_jobs
from hf_robustmed.data.describe import DatasetSample, sample_benchmark
from hf_robustmed.data.reader import ShardRows


def test_samples_hold_each_built_severity_and_blanks_for_the_others(tmp_path):
    write_medmnist(tmp_path, "bloodmnist", rgb=True, classes=8, seed=1)
    jobs = medmnist_c_jobs(tmp_path, datasets=["bloodmnist"], corruptions=["pixelate"], severities=(2, 4), size=28)
    build_benchmark(jobs, tmp_path / "out", name="Tiny-C", progress=False)
    (sample,) = sample_benchmark(tmp_path / "out", limit=3)
    assert (sample.dataset, sample.title) == ("bloodmnist", "Tiny-C · bloodmnist")
    np.testing.assert_array_equal(
        sample.clean, ShardRows(tmp_path / "out", "bloodmnist-clean", "test").read(0, 3).images
    )
    assert sorted(sample.corrupted["pixelate"]) == [2, 4] and sample.corrupted["pixelate"][4].shape == (3, 28, 28, 3)
    ((name, row),) = sample.gallery_rows()
    assert name == "pixelate" and len(row) == 6
    np.testing.assert_array_equal(row[4], sample.corrupted["pixelate"][4][0])
    assert all((row[s] == 255).all() for s in (1, 3, 5))  # severities not built: white tiles
    assert sample.at_severity(2)["pixelate"] is sample.corrupted["pixelate"][2]
    assert sample.at_severity(3)["pixelate"] is sample.corrupted["pixelate"][4]  # not built: the highest one
    with pytest.raises(ValueError, match="has no validation split to describe"):
        sample_benchmark(tmp_path / "out", split="validation")
    with pytest.raises(ValueError, match="is not a benchmark folder"):
        sample_benchmark(tmp_path)


def test_a_dataset_without_corruptions_has_no_spectra_to_draw():
    sample = DatasetSample("d", "t", np.zeros((1, 4, 4), np.uint8), {"blur": {}})
    assert sample.at_severity(3) == {} and sample.gallery_rows()[0][0] == "blur"


def test_the_data_layer_does_not_import_the_figures():
    code = (
        "import sys, hf_robustmed.data.describe; "
        "print('hf_robustmed.figures' in sys.modules, 'matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
