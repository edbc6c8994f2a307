"""The benchmark description figures: DCT spectra, intensity densities and atomic PNG saving."""

import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import require, textured_image
from PIL import Image

from hf_robustmed.figures import (
    dct_spectrum_figure,
    intensity_density,
    intensity_density_figure,
    radial_dct_profile,
    save_figure,
)

matplotlib = require("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


@pytest.fixture(scope="module")
def sets() -> dict[str, np.ndarray]:
    clean = np.stack([textured_image(64, rgb=True, seed=s) for s in range(6)])
    blurred = np.stack([cv2.GaussianBlur(image, (0, 0), 2.0) for image in clean])
    noise = np.random.default_rng(1).normal(0, 30, clean.shape)
    noisy = np.clip(clean + noise, 0, 255).astype(np.uint8)
    return {"clean": clean, "blur": blurred, "noise": noisy}


def high_frequency(images: np.ndarray) -> float:
    centres, profile = radial_dct_profile(images)
    return float(profile[centres > 0.5].mean())


def test_profile_shape_and_range(sets):
    centres, profile = radial_dct_profile(sets["clean"], bins=64)
    assert centres.shape == profile.shape == (64,)
    assert np.all((centres > 0) & (centres < 1)) and np.all(np.diff(centres) > 0)
    assert np.all(np.isfinite(profile)) and np.all(profile >= 0)
    assert profile[0] > profile[-1]  # natural images: energy falls with frequency


def test_profile_orders_blur_clean_noise(sets):
    assert high_frequency(sets["blur"]) < high_frequency(sets["clean"]) < high_frequency(sets["noise"])


def test_profile_grey_matches_rgb_luma(sets):
    rgb = sets["clean"]
    luma = np.round(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    _, from_rgb = radial_dct_profile(rgb)
    _, from_grey = radial_dct_profile(luma)
    np.testing.assert_allclose(from_rgb, from_grey, atol=5e-3)


def test_profile_of_constant_image_is_dc_only():
    centres, profile = radial_dct_profile(np.full((1, 8, 8), 255, np.uint8), bins=4)
    np.testing.assert_allclose(centres, [0.125, 0.375, 0.625, 0.875])
    # The orthonormal DC term of an 8×8 image of ones is 8, every other coefficient 0. The first ring (radius below
    # a quarter of √(7² + 7²) ≈ 2.47) holds the 8 coefficients (0,0) (0,1) (1,0) (1,1) (0,2) (2,0) (1,2) (2,1).
    np.testing.assert_allclose(profile, [np.log(9) / 8, 0, 0, 0], atol=1e-6)


def scipy_profile(image: np.ndarray, bins: int) -> np.ndarray:
    """The radial profile of one grey image by its definition, with SciPy's orthonormal DCT-II."""
    fft = require("scipy.fft")
    magnitude = np.log1p(np.abs(fft.dctn(image / 255.0, type=2, norm="ortho")))
    radius = np.hypot(*np.mgrid[0 : image.shape[0], 0 : image.shape[1]])
    ring = np.minimum((radius / radius.max() * bins).astype(int), bins - 1)
    return np.array([magnitude[ring == k].mean() for k in range(bins) if (ring == k).any()])


def test_profile_odd_size_and_single_image():
    """An odd-sized image is cropped to even sides (cv2.dct needs them); the profile is SciPy's DCT's."""
    image = textured_image(33, rgb=False)
    centres, profile = radial_dct_profile(image[None], bins=16)
    assert len(centres) == len(profile) == 16
    np.testing.assert_allclose(profile, scipy_profile(image[:32, :32], 16), rtol=1e-5, atol=1e-6)


def test_dct_figure_lines(sets):
    fig = dct_spectrum_figure(sets["clean"], {"blur": sets["blur"], "noise": sets["noise"][:2]})
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["clean", "blur", "noise"]
    assert lines[0].get_color() == "black" and lines[0].get_linewidth() > lines[1].get_linewidth()
    assert lines[1].get_color() != lines[2].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["clean", "blur", "noise"]
    assert ax.get_title() == "Average DCT spectrum" and ax.get_xlabel() and ax.get_ylabel()


def test_dct_figure_single_corruption_single_image_grey():
    clean = textured_image(32, rgb=False)[None]
    fig = dct_spectrum_figure(clean, {"blur": cv2.GaussianBlur(clean[0], (5, 5), 0)[None]}, title="T")
    assert len(fig.axes[0].get_lines()) == 2 and fig.axes[0].get_title() == "T"


def test_intensity_density_sums_to_one(sets):
    for images in sets.values():
        density = intensity_density(images)
        assert density.shape == (256,) and np.isclose(density.sum(), 1.0) and np.all(density >= 0)
    assert intensity_density(np.full((2, 4, 4, 3), 7, np.uint8))[7] == 1.0


def test_density_figure_grid(sets):
    corrupted = {f"c{i}": sets["noise"] for i in range(5)}
    fig = intensity_density_figure(sets["clean"], corrupted)
    assert isinstance(fig, Figure) and len(fig.axes) == 5  # 2×4 grid, the 3 unused cells removed
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes} == {(2, 4)}
    for ax, name in zip(fig.axes, corrupted, strict=True):
        assert ax.get_title() == name and len(ax.get_lines()) == 1 and len(ax.collections) == 1
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), intensity_density(sets["noise"]))
    assert fig.get_supxlabel() == "pixel intensity"
    labelled = [ax.xaxis.get_tick_params()["labelbottom"] for ax in fig.axes]
    assert labelled == [False, True, True, True, True]  # every column's lowest cell shows intensities


def test_density_figure_single(sets):
    fig = intensity_density_figure(sets["clean"][:1, ..., 0], {"blur": sets["blur"][:3, ..., 0]})
    assert len(fig.axes) == 1


def test_save_figure_writes_png_atomically(sets, tmp_path):
    fig = dct_spectrum_figure(sets["clean"], {"blur": sets["blur"]})
    path = save_figure(fig, tmp_path / "sub" / "dct.png")
    assert path == tmp_path / "sub" / "dct.png"
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 100
    assert [p.name for p in path.parent.iterdir()] == ["dct.png"]


def test_save_figure_closes_pyplot_figure(tmp_path):
    plt = require("matplotlib.pyplot")
    fig = plt.figure()
    save_figure(fig, tmp_path / "f.png")
    assert fig.number not in plt.get_fignums()


GOOD = np.zeros((2, 8, 8), np.uint8)


@pytest.mark.parametrize(
    ("clean", "corrupted", "message"),
    [
        (GOOD.astype(np.float32), {"a": GOOD}, "uint8"),
        (GOOD[0], {"a": GOOD}, "N×H×W"),
        (np.zeros((2, 8, 8, 4), np.uint8), {"a": GOOD}, "N×H×W"),
        (np.zeros((0, 8, 8), np.uint8), {"a": GOOD}, "empty"),
        (GOOD, {}, "at least one"),
        (GOOD, {"a": np.zeros((2, 8, 6), np.uint8)}, "'a'"),
        (GOOD, {"a": GOOD.astype(np.int16)}, "uint8"),
    ],
)
@pytest.mark.parametrize("figure", [dct_spectrum_figure, intensity_density_figure])
def test_bad_inputs(figure, clean, corrupted, message):
    with pytest.raises(ValueError, match=message):
        figure(clean, corrupted)


def test_profile_rejects_tiny_images():
    with pytest.raises(ValueError, match="2×2"):
        radial_dct_profile(np.zeros((1, 1, 8), np.uint8))


def test_import_does_not_load_matplotlib():
    code = "import sys, hf_robustmed.figures; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_names_extra():
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
        "import numpy as np\nfrom hf_robustmed.figures import dct_spectrum_figure\n"
        "x = np.zeros((1, 4, 4), np.uint8)\n"
        "try:\n    dct_spectrum_figure(x, {'a': x})\n"
        "except ImportError as e:\n    assert 'hf-robustmed[viz]' in str(e)\n"
        "else:\n    raise SystemExit('no ImportError')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------------------------------
# Figures as a researcher reads them (issue #12, item 14)
# --------------------------------------------------------------------------------------------------------------------


def test_dct_lines_stay_distinct_beyond_ten_sets_on_a_log_axis(sets):
    corrupted = {f"c{i}": sets["noise"] if i % 2 else sets["blur"] for i in range(13)}
    ax = dct_spectrum_figure(sets["clean"], corrupted).axes[0]
    styles = [(tuple(line.get_color()), line.get_linestyle()) for line in ax.get_lines()[1:]]
    assert len(set(styles)) == 13  # no two corruptions share colour and dash pattern
    assert len({colour for colour, _ in styles[:10]}) == 10  # ten distinct hues first
    assert ax.get_yscale() == "log"  # the high frequencies, orders of magnitude down, are told apart


def test_density_axis_is_not_flattened_by_the_spike_at_255(sets):
    clean = sets["clean"]
    bright = clean.copy()
    bright[:, : clean.shape[1] // 2] = 255  # half the pixels clipped, as brightness_up and contrast_up do
    ax = intensity_density_figure(clean, {"brightness_up": bright}).axes[0]
    body = intensity_density(bright)[4:252].max()
    assert ax.get_ylim()[1] == pytest.approx(1.25 * max(body, intensity_density(clean)[4:252].max()))
    assert intensity_density(bright)[255] > 5 * ax.get_ylim()[1]  # the spike is cut …
    assert any(text.get_text().endswith("at 255 ↑") for text in ax.texts)  # … and labelled with its value


def test_dataset_figure_is_bars_below_five_datasets_and_says_things_once():
    from hf_robustmed.report import MIN_RADAR_AXES, dataset_figure

    values = pd.DataFrame(
        {"a": [80.0, 70, 60, 50, 40], "b": [75.0, 72, 50, 45, 44]}, index=["d1", "d2", "d3", "d4", "d5"]
    )
    assert MIN_RADAR_AXES == 5
    bars = dataset_figure(values.iloc[:4], title="Top-1 accuracy on clean data", label="top-1 accuracy (%)").axes[0]
    assert bars.name == "rectilinear" and bars.get_ylabel() == "top-1 accuracy (%)"
    radar = dataset_figure(values, title="Top-1 accuracy on clean data", label="top-1 accuracy (%)").axes[0]
    assert radar.name == "polar" and radar.get_title() == "Top-1 accuracy on clean data"  # not the label again
    assert [t.get_text() for t in radar.texts] == ["top-1 accuracy (%)"]  # the radial axis's label, once
