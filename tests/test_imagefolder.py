"""Image folders are read one split at a time, with one label space over all their splits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import require
from PIL import Image

require("datasets")

from hf_robustmed.data import load_image_dataset  # noqa: E402

LAYOUT = {  # validation lacks "benign": sorted folder names over all splits give benign 0, cyst 1, malignant 2
    "test": {"benign": 2, "cyst": 1, "malignant": 2},
    "validation": {"cyst": 2, "malignant": 1},
}


def write_folder(root: Path) -> Path:
    """``root/{split}/{class}/{n}.png``; each image's grey level encodes its class (10, 20, 30 by class name)."""
    grey = {name: 10 * (i + 1) for i, name in enumerate(sorted({c for split in LAYOUT.values() for c in split}))}
    for split, classes in LAYOUT.items():
        for name, count in classes.items():
            (root / split / name).mkdir(parents=True)
            for n in range(count):
                Image.fromarray(np.full((8, 8), grey[name], np.uint8)).save(root / split / name / f"{n}.png")
    return root


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    return write_folder(tmp_path / "scans")


def load(folder: Path, split: str):
    return load_image_dataset("imagefolder", split, data_dir=str(folder), cache_dir=str(folder.parent / "cache"))


def test_a_split_lacking_a_class_keeps_the_label_ids(folder):
    test, validation = load(folder, "test"), load(folder, "validation")
    assert test.class_names == validation.class_names == ["benign", "cyst", "malignant"]
    for source, split in ((test, "test"), (validation, "validation")):
        images = source.images[0 : len(source)]
        assert len(source) == sum(LAYOUT[split].values())
        np.testing.assert_array_equal(images[:, 0, 0] // 10 - 1, source.labels)  # the label is the folder's class
    assert sorted(validation.labels.tolist()) == [1, 1, 2]


def test_only_the_asked_split_is_prepared(folder, caplog, capfd):
    with caplog.at_level(logging.INFO):
        source = load(folder, "test")
    printed = capfd.readouterr()
    output = caplog.text + printed.out + printed.err
    assert len(source) == 5
    assert "validation" not in output and "Generating test split" in output  # datasets' progress bar, on stderr


def test_an_unknown_split_names_the_splits(folder):
    with pytest.raises(ValueError, match="has no split 'train'; splits: test, validation"):
        load(folder, "train")
