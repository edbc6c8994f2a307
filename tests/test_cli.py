"""The hf-robustmed command line: corrupt, corruptions, suites, gallery, and its error messages."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import textured_image
from PIL import Image

from hf_robustmed.cli import main
from hf_robustmed.corruptions import corrupt, list_corruptions


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "scan.png"
    Image.fromarray(textured_image(64, False)).save(path)
    return path


def test_corrupt_writes_the_engines_output(image_file, tmp_path, capsys):
    out = tmp_path / "out" / "blurred.png"
    code = main([
        "corrupt", str(image_file), str(out), "--corruption", "motion_blur", "--severity", "4",
        "--suite", "medmnist-c/octmnist", "--seed", "3", "--key", "7",
    ])
    assert code == 0 and out.exists()
    expected = corrupt(np.asarray(Image.open(image_file)), "motion_blur", 4, suite="medmnist-c/octmnist", seed=3, key=7)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    assert not list(out.parent.glob(".*tmp*")), "no temporary file left behind"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--corruption", "nope", "--severity", "1"], "unknown corruption 'nope'"),
        (["--corruption", "pixelate", "--severity", "9"], "severity must be in 1..5"),
        (["--corruption", "pixelate", "--severity", "1", "--suite", "medmnist-c/bogus"], "unknown suite"),
    ],
)
def test_corrupt_rejects_bad_arguments(image_file, tmp_path, capsys, argv, message):
    out = tmp_path / "x.png"
    assert main(["corrupt", str(image_file), str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_corrupt_rejects_broken_images(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["corrupt", str(broken), str(tmp_path / "x.png"), "-c", "pixelate", "-s", "1"]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["corrupt", str(tmp_path / "missing.png"), str(tmp_path / "x.png"), "-c", "pixelate", "-s", "1"]) == 2
    assert "not found" in capsys.readouterr().err


def test_sixteen_bit_input_is_scaled(tmp_path):
    path = tmp_path / "ct.png"
    Image.fromarray(np.full((32, 32), 40000, np.uint16)).save(path)
    out = tmp_path / "out.png"
    assert main(["corrupt", str(path), str(out), "-c", "contrast", "-s", "1"]) == 0
    assert np.asarray(Image.open(out)).shape == (32, 32)


def test_corruptions_table_lists_every_corruption_and_parameter(capsys):
    assert main(["corruptions", "--suite", "medmnist-c/pathmnist"]) == 0
    table = capsys.readouterr().out
    for name in list_corruptions("medmnist-c/pathmnist"):
        assert f"| {name} " in table
    assert "(5, 32)" in table and "(17, 25)" in table  # stain deposit and bubble severity-5 parameters
    assert main(["suites"]) == 0
    assert "medimeta-c" in capsys.readouterr().out


def test_gallery_draws_rows_and_columns(tmp_path, image_file):
    out = tmp_path / "grid.png"
    assert main(["gallery", str(image_file), "-o", str(out), "--suite", "medimeta-c", "--tile", "40"]) == 0
    grid = Image.open(out)
    rows = len(list_corruptions("medimeta-c"))
    assert grid.width >= 6 * 40 and grid.height >= rows * 40
    assert main(["gallery", "-o", str(tmp_path / "cells.png"), "--sample", "cells", "--corruptions", "bubble,stain_deposit",
                 "--suite", "medmnist-c/pathmnist", "--tile", "32", "--size", "64"]) == 0


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "hf_robustmed.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "hf-robustmed" in done.stdout
