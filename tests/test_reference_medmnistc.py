"""Side by side with the MedMNIST-C reference, ``medmnistc`` 0.1.0.

The reference needs old pins (numpy < 2.3, scikit-image 0.23.2) and ImageMagick's MagickWand, so these tests run
in their own environment: ``make parity`` (which builds ``.venv-ref``). Elsewhere they are skipped.
"""

import numpy as np
import pytest
from conftest import textured_image
from PIL import Image

from hf_robustmed.corruptions import SUITES, blur, corrupt

try:
    from medmnistc.corruptions.registry import CORRUPTIONS_DS, DATASET_RGB
except ImportError as error:  # missing package, or MagickWand not installed
    pytest.skip(f"medmnistc reference not importable ({error}); run `make parity`", allow_module_level=True)

pytestmark = pytest.mark.reference

DETERMINISTIC = {
    "pixelate",
    "jpeg_compression",
    "defocus_blur",
    "zoom_blur",
    "gaussian_blur",
    "brightness_up",
    "brightness_down",
    "contrast_up",
    "contrast_down",
    "saturate",
    "gamma_corr_up",
    "gamma_corr_down",
    "black_corner",
}
PAIRS = [(ds, name) for ds, table in CORRUPTIONS_DS.items() for name in table]


def reference(dataset: str, name: str, image: np.ndarray, severity: int) -> np.ndarray:
    """The reference generator's own pipeline (DatasetManager): RGB → corrupt → luma for grey datasets."""
    out = CORRUPTIONS_DS[dataset][name].apply(Image.fromarray(image).convert("RGB"), severity - 1)
    if not DATASET_RGB[dataset]:
        out = np.asarray(Image.fromarray(out).convert("L"))
    return np.asarray(out)


def test_registry_parameters_are_the_references():
    for dataset, table in CORRUPTIONS_DS.items():
        suite = SUITES[f"medmnist-c/{dataset}"]
        assert list(suite.corruptions) == list(table), dataset  # same corruptions, same generation order
        assert suite.rgb == DATASET_RGB[dataset]
        for name, corruptor in table.items():
            ours = suite.corruptions[name].params
            theirs = corruptor.severity_params[:5]
            if name == "stain_deposit":
                ours = tuple(p[0] for p in ours)
            for a, b in zip(ours, theirs, strict=True):
                np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), err_msg=f"{dataset}:{name}")


DETERMINISTIC_PAIRS = [p for p in PAIRS if p[1] in DETERMINISTIC]


@pytest.mark.parametrize("dataset,name", DETERMINISTIC_PAIRS, ids=[f"{d}:{n}" for d, n in DETERMINISTIC_PAIRS])
def test_deterministic_corruptions_agree_within_one_level(dataset, name):
    image = textured_image(224, DATASET_RGB[dataset], seed=3)
    for severity in range(1, 6):
        ours = corrupt(image, name, severity, suite=f"medmnist-c/{dataset}").astype(int)
        theirs = reference(dataset, name, image, severity).astype(int)
        difference = np.abs(ours - theirs)
        assert (difference <= 1).mean() >= 0.99, f"severity {severity}: {(difference <= 1).mean():.4f} within ±1"
        assert difference.max() <= 1


@pytest.mark.parametrize("rgb", [True, False])
@pytest.mark.parametrize("radius,sigma", [(3, 3), (10, 5), (15, 12), (20, 15)])
def test_motion_blur_matches_imagemagick_for_the_same_angle(rgb, radius, sigma):
    from medmnistc.corruptions.filter import MotionBlur

    image = textured_image(224, rgb, seed=4)
    for seed in range(3):
        np.random.seed(seed)
        angle = np.random.uniform(-45, 45)
        np.random.seed(seed)  # the reference draws the same angle from the legacy global state
        theirs = MotionBlur([(radius, sigma)]).apply(Image.fromarray(image).convert("RGB"), 0)
        if not rgb:
            theirs = np.asarray(Image.fromarray(theirs).convert("L"))
        ours = blur.motion_blur_at(image.reshape(224, 224, -1), float(radius), float(sigma), angle)
        difference = np.abs(ours.reshape(image.shape).astype(int) - np.asarray(theirs, int))
        assert (difference == 0).mean() >= 0.999 and difference.max() <= 1, (difference == 0).mean()


def _summary(outs: list[np.ndarray], clean: np.ndarray) -> dict[str, float]:
    diff = np.stack(outs).astype(float) - clean.astype(float)
    return {
        "mean": float(diff.mean()),
        "std": float(diff.std()),
        "changed": float((np.abs(diff) > 0).mean()),
        "black": float((np.stack(outs) == 0).mean()),
    }


# Random corruptions: the same law, compared through summary statistics over many draws.
RANDOM_PAIRS = [
    ("dermamnist", "gaussian_noise"),
    ("chestmnist", "gaussian_noise"),
    ("dermamnist", "speckle_noise"),
    ("octmnist", "speckle_noise"),
    ("dermamnist", "impulse_noise"),
    ("tissuemnist", "impulse_noise"),
    ("dermamnist", "shot_noise"),
    ("pneumoniamnist", "shot_noise"),
    ("pathmnist", "stain_deposit"),
    ("bloodmnist", "bubble"),
    ("dermamnist", "characters"),
    ("dermamnist", "motion_blur"),
]


@pytest.mark.parametrize("dataset,name", RANDOM_PAIRS, ids=[f"{d}:{n}" for d, n in RANDOM_PAIRS])
def test_random_corruptions_follow_the_same_law(dataset, name):
    import random

    image = textured_image(224, DATASET_RGB[dataset], seed=5)
    draws = 24 if name in {"stain_deposit", "bubble", "characters", "motion_blur"} else 3
    tolerance = {"stain_deposit": 0.35, "bubble": 0.25, "characters": 0.6, "motion_blur": 0.1}.get(name, 0.05)
    corruptor = CORRUPTIONS_DS[dataset][name]
    corruptor.rng = np.random.default_rng(0)  # impulse noise reads an injected Generator
    for severity in (1, 5):
        np.random.seed(0)
        random.seed(0)
        theirs = _summary([reference(dataset, name, image, severity) for _ in range(draws)], image)
        ours = _summary(
            [corrupt(image, name, severity, suite=f"medmnist-c/{dataset}", key=k) for k in range(draws)], image
        )
        for stat in ("std", "changed", "black"):
            if theirs[stat] > 1e-3:
                assert ours[stat] == pytest.approx(theirs[stat], rel=tolerance), (severity, stat, ours, theirs)
        assert abs(ours["mean"] - theirs["mean"]) <= max(0.5, tolerance * abs(theirs["mean"])), (severity, ours, theirs)
