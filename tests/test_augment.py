"""Corruptions as training augmentation: continuous intensity, RandomCorruption, the held-out split and its mCE."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from conftest import require, textured_image
from PIL import Image

from hf_robustmed.corruptions import (
    SUITES,
    RandomCorruption,
    corrupt,
    corruption_family,
    get_suite,
    list_corruptions,
    seen_corruptions,
    split_corruptions,
)
from hf_robustmed.corruptions.suites import INTERPOLATION, interpolate_param

SUITE_CORRUPTIONS = [(suite, name) for suite in SUITES for name in SUITES[suite].corruptions]
RGB, GREY = textured_image(40, True, seed=1), textured_image(28, False, seed=2)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# --- continuous intensity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite,name", SUITE_CORRUPTIONS)
def test_an_integral_float_severity_is_exactly_that_severity(suite, name):
    for image in (RGB, GREY):
        for k in range(1, 6):
            expected = corrupt(image, name, k, suite=suite, seed=3, key=7)
            for value in (float(k), np.float32(k), np.float64(k)):
                out = corrupt(image, name, value, suite=suite, seed=3, key=7)
                assert out.tobytes() == expected.tobytes(), f"{suite}:{name} severity {value!r}"
        between = corrupt(image, name, 2.5, suite=suite, seed=3, key=7)
        assert between.shape == image.shape and between.dtype == np.uint8
        assert between.tobytes() == corrupt(image, name, 2.5, suite=suite, seed=3, key=7).tobytes()  # deterministic


def test_every_operation_of_every_suite_has_an_interpolation_rule_of_its_parameter_shape():
    for suite, name in SUITE_CORRUPTIONS:
        entry = get_suite(suite).corruptions[name]
        rule = INTERPOLATION[entry.op]
        if isinstance(rule, tuple) and rule != "zoom":
            assert all(isinstance(p, tuple) and len(p) == len(rule) for p in entry.params), f"{suite}:{name}"
        for low, high in itertools.pairwise(entry.params):
            mid = interpolate_param(entry.op, low, high, 0.5)
            assert type(mid) is type(low) or isinstance(low, (int, float)) and isinstance(mid, (int, float))


def test_interpolation_rules_by_hand():
    assert interpolate_param("gaussian_noise", 0.08, 0.12, 0.25) == pytest.approx(0.09)
    assert interpolate_param("jpeg_compression", 25, 18, 0.5) == 22  # 21.5 rounded half up
    assert interpolate_param("gaussian_blur_kernel", 17, 21, 0.25) == 19  # 18 → the odd above (half up)
    assert interpolate_param("gaussian_blur_kernel", 11, 13, 0.2) == 11
    assert interpolate_param("motion_blur", (10, 3), (15, 5), 0.5) == (12.5, 4.0)
    assert interpolate_param("glass_blur", (0.7, 1, 2), (0.9, 2, 1), 0.5) == (pytest.approx(0.8), 2, 2)
    assert interpolate_param("stain_deposit", (4, 24), (5, 32), 0.5) == (5, 28)
    sev3, sev4 = SUITES["imagenet-c"].corruptions["zoom_blur"].params[2:4]
    zooms = interpolate_param("zoom_blur", sev3, sev4, 0.5)
    assert zooms[0] == 1.0 and zooms[-1] == pytest.approx((sev3[-1] + sev4[-1]) / 2)
    assert np.allclose(np.diff(zooms), 0.02)
    assert interpolate_param("contrast", 0.4, 0.3, 0.0) == 0.4
    with pytest.raises(ValueError, match="no interpolation rule"):
        interpolate_param("nosuch", 1, 2, 0.5)


def test_a_float_severity_lies_between_its_neighbours():
    image = textured_image(64, True, seed=4)
    cases = (
        ("imagenet-c", "contrast"),
        ("imagenet-c", "gaussian_noise"),
        ("medmnist-c/pathmnist", "saturate"),
        ("imagenet-c", "defocus_blur"),
        ("imagenet-c", "zoom_blur"),
    )
    for suite, name in cases:
        d2, d25, d3 = (distance(corrupt(image, name, s, suite=suite, key=1), image) for s in (2, 2.5, 3))
        assert min(d2, d3) < d25 < max(d2, d3), f"{suite}:{name}: {d2:.2f} {d25:.2f} {d3:.2f}"


def test_batches_take_a_float_severity_too():
    from hf_robustmed.corruptions import corrupt_batch

    images = np.stack([np.roll(RGB, i, axis=1) for i in range(3)])
    batch = corrupt_batch(images, "speckle_noise", 3.25, seed=1)
    for i, image in enumerate(images):
        np.testing.assert_array_equal(batch[i], corrupt(image, "speckle_noise", 3.25, seed=1, key=i))
    assert not np.array_equal(batch[0], corrupt(images[0], "speckle_noise", 3, seed=1, key=0))


@pytest.mark.parametrize(
    "severity,match",
    [
        (0.99, "severity must be in 1..5"),
        (5.01, "severity must be in 1..5"),
        (math.nan, "severity must be in 1..5"),
        (math.inf, "severity must be in 1..5"),
        (-math.inf, "severity must be in 1..5"),
        (np.float32("nan"), "1..5"),
        (0, "severity must be in 1..5"),
        (6, "severity must be in 1..5"),
        ("3", "an integer in 1..5 or a float"),
        (True, "an integer in 1..5 or a float"),
        (None, "an integer in 1..5 or a float"),
    ],
)
def test_severities_outside_one_to_five_fail_clearly(severity, match):
    with pytest.raises(ValueError, match=match):
        corrupt(RGB, "pixelate", severity)


# --- RandomCorruption -----------------------------------------------------------------------------------------------


def test_the_draw_depends_only_on_seed_and_key_and_follows_its_law():
    t = RandomCorruption(suite="medimeta-c", seed=5)
    keys = [(epoch, row) for epoch in range(4) for row in range(300)]
    draws = [t.draw(k) for k in keys]
    assert draws == [t.draw(k) for k in reversed(keys)][::-1]  # order does not matter
    assert draws != [RandomCorruption(suite="medimeta-c", seed=6).draw(k) for k in keys]
    clean = sum(d is None for d in draws) / len(draws)
    assert abs(clean - 1 / 8) < 0.03  # identity as one more choice among 7 corruptions
    # Uniform choices: 1200 draws, 150 expected per corruption (σ ≈ 11.5), 210 per severity (σ ≈ 13).
    names = Counter(d[0] for d in draws if d)
    assert set(names) == set(list_corruptions("medimeta-c")) and all(abs(n - 150) < 50 for n in names.values())
    severities = Counter(d[1] for d in draws if d)
    assert set(severities) == {1, 2, 3, 4, 5} and all(abs(n - 210) < 55 for n in severities.values())

    continuous = RandomCorruption(
        suite="medimeta-c", corruptions=["zoom_blur"], continuous=True, p_clean=0.0, severities=(2, 4)
    )
    levels = [continuous.draw(k)[1] for k in keys]
    assert all(2 <= s <= 4 and float(s * 16).is_integer() for s in levels) and np.std(levels) > 0.5
    assert len({s for s in levels if isinstance(s, float)}) == 30  # the 1/16 grid strictly between 2 and 4, less 3
    assert all(RandomCorruption(p_clean=1.0).draw(k) is None for k in keys[:50])


def test_a_keyed_call_equals_the_engine_and_keeps_type_and_shape():
    t = RandomCorruption(
        suite="imagenet-c", corruptions=["gaussian_noise", "pixelate", "motion_blur"], p_clean=0.3, seed=2
    )
    outcomes = set()
    for key in range(12):
        choice = t.draw(key)
        for image in (RGB, GREY):
            expected = image if choice is None else corrupt(image, *choice, suite="imagenet-c", seed=2, key=key)
            np.testing.assert_array_equal(t(image, key=key), expected)
            pil = t(Image.fromarray(image), key=key)
            assert isinstance(pil, Image.Image) and pil.mode == ("RGB" if image.ndim == 3 else "L")
            np.testing.assert_array_equal(np.asarray(pil), expected)
        outcomes.add(choice is None)
    assert outcomes == {True, False}
    rgba = Image.fromarray(np.dstack([RGB, np.full(RGB.shape[:2], 200, np.uint8)]))
    assert t(rgba, key=0).mode == "RGBA" and np.asarray(t(rgba, key=0))[..., 3].min() == 200
    palette = Image.fromarray(RGB).convert("P")
    assert t(palette, key=1).mode == "P" and t(palette, key=1).size == palette.size


def test_tensors_and_v2_pipelines():
    torch = require("torch")
    v2 = require("torchvision.transforms.v2")
    from torchvision import tv_tensors

    t = RandomCorruption(suite="imagenet-c", corruptions=["gaussian_noise"], p_clean=0.0, seed=1)
    chw = torch.from_numpy(RGB).permute(2, 0, 1).contiguous()
    out = t(chw, key=3)
    assert out.dtype == torch.uint8 and out.shape == chw.shape
    np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), t(RGB, key=3))
    floats = t(chw.float() / 255, key=3)
    assert floats.dtype == torch.float32 and torch.allclose(floats * 255, out.float())
    grey = torch.from_numpy(GREY)[None]
    assert t(grey, key=0).shape == (1, 28, 28)
    batch = t(torch.stack([chw, chw]), key=9)
    assert batch.shape == (2, 3, 40, 40) and not torch.equal(batch[0], batch[1])  # one draw per image
    assert torch.equal(batch[0], t(chw, key=(9, 0)))

    pipeline = v2.Compose([v2.PILToTensor(), t, v2.ToDtype(torch.float32, scale=True)])
    image, label = pipeline(tv_tensors.Image(chw), 4)
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.float32 and label == 4
    assert pipeline(Image.fromarray(RGB)).shape == (3, 40, 40)
    torch.manual_seed(0)  # keyless calls draw from torch's generator, like torchvision's transforms
    first = [t(chw) for _ in range(3)]
    torch.manual_seed(0)
    assert all(torch.equal(a, t(chw)) for a in first) and not torch.equal(first[0], first[1])


class _Keyed:
    """A dataset passing (epoch, index) as the key: the same augmentation for any worker count or order."""

    def __init__(self, transform, epoch):
        self.transform, self.epoch = transform, epoch

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return self.transform(np.roll(RGB, index, axis=0), key=(self.epoch, index))


def test_keyed_draws_do_not_depend_on_loader_workers():
    torch = require("torch")
    t = RandomCorruption(suite="medmnist-c/dermamnist", continuous=True, seed=0)
    batches = {}
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(_Keyed(t, epoch=1), batch_size=3, num_workers=workers)
        batches[workers] = torch.cat(list(loader))
    assert torch.equal(batches[0], batches[2])


def test_bad_transforms_fail_clearly():
    with pytest.raises(ValueError, match="unknown corruption 'frost'"):
        RandomCorruption(corruptions=["frost"])
    with pytest.raises(ValueError, match="at least one corruption"):
        RandomCorruption(corruptions=[])
    with pytest.raises(ValueError, match="p_clean"):
        RandomCorruption(p_clean=1.5)
    with pytest.raises(ValueError, match="severity must be in 1..5"):
        RandomCorruption(severities=(0, 3))
    with pytest.raises(ValueError, match="seed"):
        RandomCorruption(seed=-1)
    with pytest.raises(TypeError, match="PIL image, a uint8 array or a tensor"):
        RandomCorruption()([1, 2, 3], key=0)


# --- the held-out protocol ------------------------------------------------------------------------------------------


def test_the_default_split_holds_out_blur_colour_artefacts_and_weather():
    for suite in SUITES:
        seen, held_out = split_corruptions(suite)
        assert sorted(seen + held_out) == sorted(list_corruptions(suite)) and not set(seen) & set(held_out)
        assert {corruption_family(n, suite) for n in seen} <= {"noise", "digital"}
        assert {corruption_family(n, suite) for n in held_out} <= {"blur", "color", "artefact", "weather"}
    assert seen_corruptions("medimeta-c") == ["gaussian_noise", "impulse_noise", "pixelate"]
    assert split_corruptions("medimeta-c", ["blur"])[0] == ["motion_blur", "zoom_blur"]
    with pytest.raises(ValueError, match="unknown corruption family"):
        split_corruptions("medimeta-c", ["acquisition"])


def _results(errors: dict) -> "pd.DataFrame":  # noqa: F821
    import pandas as pd

    rows = []
    for (model, dataset, corruption), error in errors.items():
        for severity in (0,) if corruption == "clean" else (1, 2):
            rows.append((model, dataset, corruption, severity, "accuracy", 1 - error, 100))
    return pd.DataFrame(rows, columns=["model", "dataset", "corruption", "severity", "metric", "value", "n"])


def test_seen_and_held_out_mce_by_hand():
    require("pandas")
    from hf_robustmed.metrics import seen_held_out_mce

    errors = {}
    for dataset in ("a", "b"):
        errors |= {
            ("ref", dataset, "clean"): 0.1,
            ("ref", dataset, "gaussian_noise"): 0.4,
            ("ref", dataset, "zoom_blur"): 0.5,
            ("ref", dataset, "contrast"): 0.2,
        }
        errors |= {
            ("aug", dataset, "clean"): 0.1,
            ("aug", dataset, "gaussian_noise"): 0.2,
            ("aug", dataset, "zoom_blur"): 0.5,
            ("aug", dataset, "contrast"): 0.3,
        }
    del errors[("ref", "b", "gaussian_noise")], errors[("aug", "b", "gaussian_noise")]  # b has no seen corruption
    table = seen_held_out_mce(_results(errors), {"aug": ["gaussian_noise"]}, reference="ref")
    aug, ref = table.loc["aug"], table.loc["ref"]
    assert aug.mce_seen == pytest.approx(50.0) and aug.pairs_seen == 1 and aug.datasets_seen == 1
    assert aug.mce_held_out == pytest.approx(100 * (1.0 + 1.5) / 2) and aug.pairs_held_out == 4
    assert aug.rel_mce_seen == pytest.approx(100 * (0.1 / 0.3))
    assert aug.seen == "gaussian_noise" and ref.seen == ""
    assert ref.mce_held_out == pytest.approx(100.0) and math.isnan(ref.mce_seen) and ref.pairs_seen == 0
    same = seen_held_out_mce(_results(errors), ["gaussian_noise"], reference="ref")
    assert same.loc["ref"].mce_seen == pytest.approx(100.0)


# --- the training option --------------------------------------------------------------------------------------------


def test_training_config_and_augmenters():
    require("torch")
    from hf_robustmed.adaptation.config import TrainConfig
    from hf_robustmed.adaptation.data import (
        augmentation_suite,
        corruption_augmenters,
        seen_corruption_names,
    )

    assert TrainConfig().augment is None  # the paper's recipe: clean images
    config = TrainConfig(augment="seen", augment_p_clean=0.25)
    assert (config.augment_suite, config.augment_continuous) == ("auto", True)
    for bad, match in (
        (dict(augment=" , "), "augment is empty"),
        (dict(augment_suite="cifar-c"), "unknown suite"),
        (dict(augment_p_clean=2.0), "augment_p_clean"),
    ):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)
    assert augmentation_suite("octmnist") == "medmnist-c/octmnist" and augmentation_suite("oct") == "imagenet-c"
    augmenters = corruption_augmenters(["toyderm", "octmnist"], "seen", seed=3)
    assert augmenters["octmnist"].corruptions == ["pixelate", "jpeg_compression", "speckle_noise"]
    assert seen_corruption_names(augmenters)[:4] == ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"]
    named = corruption_augmenters(["toyderm", "octmnist"], "brightness", seed=3)
    assert named["toyderm"].corruptions == ["brightness"] and named["octmnist"] is None
    assert corruption_augmenters(["toyderm"], None) == {"toyderm": None}
    with pytest.raises(ValueError, match="in none of the training suites: glas_blur"):
        corruption_augmenters(["toyderm"], "glass_blur,glas_blur")


def test_augmented_training_images_depend_only_on_seed_epoch_and_row():
    torch = require("torch")
    from hf_robustmed.adaptation.data import AugmentedImages, corruption_augmenters
    from hf_robustmed.data.png import encode_png

    images = [encode_png(np.roll(RGB, i, axis=1)) for i in range(6)]
    t = corruption_augmenters(["toyderm"], "seen", seed=7)["toyderm"]

    def make(corruptions):
        zeros = np.zeros(6, np.int64)
        return AugmentedImages(images, zeros, size=32, mean=(0.5,) * 3, std=(0.5,) * 3, seed=7, corruptions=corruptions)

    plain, augmented = make(None), make([t] * 6)
    augmented.set_epoch(2)
    plain.set_epoch(2)
    first = [augmented[i][0] for i in range(6)]
    assert all(torch.equal(first[i], augmented[i][0]) for i in reversed(range(6)))
    changed = [not torch.equal(first[i], plain[i][0]) for i in range(6)]
    assert any(changed) and changed == [t.draw((2, i)) is not None for i in range(6)]
    loader = torch.utils.data.DataLoader(augmented, batch_size=2, num_workers=2)
    assert torch.equal(torch.cat([b for b, _ in loader]), torch.stack(first))
    with pytest.raises(ValueError, match="corruption transforms for 6 images"):
        make([t])
