"""One reader and one 8-bit policy for 16-bit and medical images at every entry point (CLI, image datasets)."""

import numpy as np
from conftest import require
from PIL import Image

from hf_robustmed.cli import main
from hf_robustmed.corruptions import corrupt
from hf_robustmed.medical_images import read_medical_image, scale_to_uint8


def twelve_bit_scan(size: int = 48, seed: int = 0) -> np.ndarray:
    """A 12-bit image (values 0–4095) as CT/MR/X-ray exports store it in a 16-bit PNG."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    values = 2048 + 1500 * np.sin(xx / 5) * np.cos(yy / 7) + rng.normal(0, 60, (size, size))
    return np.clip(values, 0, 4095).astype(np.uint16)


def save16(array: np.ndarray, path):
    Image.fromarray(array).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def test_cli_corrupt_reads_16_bit_png_by_the_common_policy(tmp_path):
    scan = twelve_bit_scan()
    path = save16(scan, tmp_path / "scan.png")
    expected = scale_to_uint8(scan)  # min–max to 0–255, not v >> 8 (which leaves a 12-bit scan at 0–15)
    np.testing.assert_array_equal(read_medical_image(path).pixels, expected)
    assert main(["corrupt", str(path), str(tmp_path / "out.png"), "-c", "brightness", "-s", "1"]) == 0
    written = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(written, corrupt(expected, "brightness", 1, key=0))
    assert main(["gallery", str(path), "-o", str(tmp_path / "gallery.png"), "--corruptions", "brightness"]) == 0


def test_cli_reads_dicom_like_the_space(tmp_path):
    pydicom_data = require("pydicom.data")
    dicom = pydicom_data.get_testdata_file("MR_small.dcm")
    assert main(["corrupt", dicom, str(tmp_path / "out.png"), "-c", "contrast", "-s", "2"]) == 0
    expected = corrupt(read_medical_image(dicom).pixels, "contrast", 2, key=0)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), expected)


def test_image_folder_source_converts_16_bit_images_like_the_reader(tmp_path, monkeypatch):
    require("datasets")
    from hf_robustmed.data import load_image_dataset

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    files = {}
    for seed, name in enumerate(("normal", "abnormal")):
        (tmp_path / "scans" / "test" / name).mkdir(parents=True)
        files[name] = save16(twelve_bit_scan(seed=seed), tmp_path / "scans" / "test" / name / "0.png")
    source = load_image_dataset(
        "imagefolder", "test", data_dir=str(tmp_path / "scans"), cache_dir=str(tmp_path / "cache")
    )
    images = source.images[0 : len(source)]
    for image, label in zip(images, source.labels, strict=True):
        np.testing.assert_array_equal(image, read_medical_image(files[source.class_names[label]]).pixels)
    assert images.dtype == np.uint8 and images.max() == 255  # convert("RGB") would saturate these to 255 everywhere
    assert images.min() < 50
