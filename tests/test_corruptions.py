"""The corruption engine: every corruption × severity × suite, on RGB and grey images at 28 and 224 px."""

import numpy as np
import pytest
from conftest import textured_image
from PIL import Image

from hf_robustmed.corruptions import (
    SUITES,
    corrupt,
    corrupt_batch,
    get_op,
    iter_corrupt,
    list_corruptions,
    list_suites,
    pil_luma,
)

SUITE_CORRUPTIONS = [(suite, name) for suite in SUITES for name in SUITES[suite].corruptions]
IMAGES = {
    (size, rgb): textured_image(size, rgb, seed=size) for size in (28, 224) for rgb in (True, False)
}
KEYS = (0, 1, 2, 3)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """The measure of 'how corrupted': mean absolute difference in grey levels."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_suites_cover_the_references():
    assert {"imagenet-c", "medimeta-c"} <= set(list_suites())
    medmnist = [s for s in list_suites() if s.startswith("medmnist-c/")]
    assert len(medmnist) == 12
    assert sum(len(SUITES[s].corruptions) for s in medmnist) == 131  # SPEC §3.1: 131 (dataset, corruption) pairs
    all_medmnist = {name for s in medmnist for name in SUITES[s].corruptions}
    assert len(all_medmnist) == 21
    assert list_corruptions("medimeta-c") == [
        "brightness", "contrast", "gaussian_noise", "impulse_noise", "motion_blur", "pixelate", "zoom_blur"
    ]
    assert len(list_corruptions(None)) == 18  # ImageNet-C's 19 less frost (needs its photographs)


@pytest.mark.parametrize("suite,name", SUITE_CORRUPTIONS, ids=[f"{s}:{n}" for s, n in SUITE_CORRUPTIONS])
def test_every_corruption(suite, name):
    random = get_op(SUITES[suite].corruptions[name].op).random
    for (size, rgb), image in IMAGES.items():
        distances = []
        for severity in range(1, 6):
            outs = [corrupt(image, name, severity, suite=suite, seed=0, key=k) for k in KEYS]
            for out in outs:
                assert out.shape == image.shape and out.dtype == np.uint8
            again = corrupt(image, name, severity, suite=suite, seed=0, key=KEYS[-1])
            assert again.tobytes() == outs[-1].tobytes(), "same seed and key must give identical bytes"
            other_seed = corrupt(image, name, severity, suite=suite, seed=1, key=KEYS[-1])
            if random:
                assert any(
                    corrupt(image, name, severity, suite=suite, seed=s, key=KEYS[-1]).tobytes() != outs[-1].tobytes()
                    for s in (1, 2, 3)
                ), "another seed must give other draws"
            else:
                assert other_seed.tobytes() == outs[-1].tobytes(), "a deterministic corruption ignores the seed"
            distances.append(np.mean([distance(out, image) for out in outs]))
        assert distances[4] > distances[0], f"{size}px rgb={rgb}: severity 5 not further than 1: {distances}"
        # ImageNet-C saturate's severity 1 scales the saturation, which a grey image does not have.
        grey_saturation = not rgb and SUITES[suite].corruptions[name].op == "saturate"
        if not grey_saturation:
            assert distances[0] > 0, f"{size}px rgb={rgb}: severity 1 left the image unchanged"


@pytest.mark.parametrize("shape", [(97, 131), (97, 131, 3), (131, 97, 1), (64, 64, 3), (128, 128), (8, 9, 3)])
def test_any_size_never_crashes(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    for suite, name in SUITE_CORRUPTIONS:
        for severity in (1, 5):
            out = corrupt(image, name, severity, suite=suite)
            assert out.shape == image.shape and out.dtype == np.uint8


def test_extreme_images(rgb224):
    for value in (0, 255):
        flat = np.full((32, 32, 3), value, np.uint8)
        for suite, name in SUITE_CORRUPTIONS:
            assert corrupt(flat, name, 3, suite=suite).shape == flat.shape


def test_grey_native_ops_equal_the_medmnist_c_detour(grey224):
    """Ops flagged grey-native skip replicate→corrupt→luma; check that this shortcut is exact for each of them."""
    replicated = np.repeat(grey224[..., None], 3, axis=2)
    for suite, name in SUITE_CORRUPTIONS:
        entry = SUITES[suite].corruptions[name]
        if not get_op(entry.op).grey_native:
            continue
        for severity in (1, 5):
            direct = corrupt(grey224, name, severity, suite=suite, key=5)
            detour = pil_luma(corrupt(replicated, name, severity, suite=suite, key=5))[..., 0]
            np.testing.assert_array_equal(direct, detour, err_msg=f"{suite}:{name} sev {severity}")


def test_grey_noise_is_averaged_like_medmnist_c():
    mid = np.full((224, 224), 128, np.uint8)
    grey = corrupt(mid, "gaussian_noise", 1, suite="medmnist-c/pneumoniamnist", key=0).astype(float)
    rgb = corrupt(np.repeat(mid[..., None], 3, 2), "gaussian_noise", 1, suite="medmnist-c/pneumoniamnist", key=0)
    sigma = 0.04 * 255
    assert rgb.astype(float).std() == pytest.approx(sigma, rel=0.05)
    assert grey.std() == pytest.approx(0.668 * sigma, rel=0.05)  # luma of three independent channels


def test_input_forms(rgb224, grey224):
    out = corrupt(Image.fromarray(rgb224), "pixelate", 3)
    np.testing.assert_array_equal(out, corrupt(rgb224, "pixelate", 3))
    assert corrupt(grey224[..., None], "motion_blur", 2).shape == (224, 224, 1)
    rgba = np.dstack([rgb224, np.full((224, 224), 77, np.uint8)])
    out = corrupt(rgba, "gaussian_noise", 3, key=1)
    np.testing.assert_array_equal(out[..., 3], 77)
    np.testing.assert_array_equal(out[..., :3], corrupt(rgb224, "gaussian_noise", 3, key=1))
    palette = Image.fromarray(rgb224).convert("P")
    assert corrupt(palette, "contrast", 2).shape == (224, 224, 4)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(name="nope", severity=1), "unknown corruption 'nope'"),
        (dict(name="brightness_up", severity=1), "medmnist-c/"),
        (dict(name="pixelate", severity=0), "severity must be in 1..5"),
        (dict(name="pixelate", severity=6), "severity must be in 1..5"),
        (dict(name="pixelate", severity=2.0), "severity must be an integer"),
        (dict(name="pixelate", severity=True), "severity must be an integer"),
        (dict(name="pixelate", severity=1, suite="medmnist-c"), "differ per dataset"),
        (dict(name="pixelate", severity=1, suite="cifar-c"), "unknown suite 'cifar-c'"),
        (dict(name="gaussian_noise", severity=1, seed=-1), "seed must be a non-negative integer"),
        (dict(name="gaussian_noise", severity=1, key=-3), "non-negative"),
        (dict(name="gaussian_noise", severity=1, key=1.5), "sample key"),
    ],
)
def test_bad_arguments(rgb224, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        corrupt(rgb224, **kwargs)


@pytest.mark.parametrize(
    "image,message",
    [
        (np.zeros((32, 32), np.float32), "dtype uint8"),
        (np.zeros((32, 32, 5), np.uint8), "C in 1..4"),
        (np.zeros((4, 32, 3), np.uint8), "at least 8 px"),
        (np.zeros((2, 32, 32, 3), np.uint8), "H×W×C"),
        ([[1, 2], [3, 4]], "numpy array or a PIL image"),
        (Image.new("I;16", (32, 32)), "16-bit or float"),
    ],
)
def test_bad_images(image, message):
    with pytest.raises(ValueError, match=message):
        corrupt(image, "pixelate", 1)


def test_string_and_tuple_keys(rgb224):
    a = corrupt(rgb224, "impulse_noise", 2, key=("oct", "test", 17))
    b = corrupt(rgb224, "impulse_noise", 2, key=("oct", "test", 17))
    c = corrupt(rgb224, "impulse_noise", 2, key=("oct", "test", 18))
    d = corrupt(rgb224, "impulse_noise", 2, key="oct/test/17")
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes() and a.tobytes() != d.tobytes()


def test_batch_is_independent_of_order_and_batching():
    images = np.stack([textured_image(64, True, seed=i) for i in range(10)])
    keys = list(range(100, 110))
    single = [corrupt(img, "shot_noise", 4, key=k) for img, k in zip(images, keys)]
    batch = corrupt_batch(images, "shot_noise", 4, keys=keys, chunk_size=3)
    assert isinstance(batch, np.ndarray) and batch.shape == images.shape
    reversed_batch = corrupt_batch(list(images[::-1]), "shot_noise", 4, keys=keys[::-1])
    for i in range(10):
        np.testing.assert_array_equal(batch[i], single[i])
        np.testing.assert_array_equal(reversed_batch[9 - i], single[i])
    default_keys = corrupt_batch(images, "shot_noise", 4)
    np.testing.assert_array_equal(default_keys[3], corrupt(images[3], "shot_noise", 4, key=3))
    with pytest.raises(ValueError, match="2 keys for 10 images"):
        corrupt_batch(images, "shot_noise", 4, keys=[1, 2])


def test_worker_count_does_not_change_bytes():
    images = [textured_image(48, i % 2 == 0, seed=i) for i in range(9)]
    serial = corrupt_batch(images, "motion_blur", 3, suite="medimeta-c", seed=7)
    parallel = list(iter_corrupt(iter(images), "motion_blur", 3, suite="medimeta-c", seed=7, num_workers=2, chunk_size=2))
    assert len(parallel) == len(serial)
    for a, b in zip(serial, parallel):
        assert a.tobytes() == b.tobytes()


def test_fast_paths_equal_the_pillow_reference_paths():
    """JPEG through OpenCV and pixelation's nearest-neighbour upscaling equal Pillow's, which the references use."""
    from hf_robustmed.corruptions.digital import jpeg_compression, jpeg_compression_pillow, pixelate, pixelate_pillow

    for rgb in (True, False):
        image = textured_image(224, rgb, seed=2)
        image = image if rgb else image[..., None]
        for quality in (5, 7, 10, 15, 20, 25, 30, 50):
            np.testing.assert_array_equal(jpeg_compression(image, quality, None, 1.0), jpeg_compression_pillow(image, quality))
        factors = {p for s in SUITES.values() for n, e in s.corruptions.items() if e.op == "pixelate" for p in e.params}
        for factor in sorted(factors):
            np.testing.assert_array_equal(pixelate(image, factor, None, 1.0), pixelate_pillow(image, factor))


def test_discrete_noise_laws_are_sampled_exactly():
    """The table sampler returns, for each uniform draw, the outcome a direct inversion of the CDF gives."""
    from hf_robustmed.corruptions._sampling import uniform_u32
    from hf_robustmed.corruptions.noise import _shot_law, _speckle_law

    image = textured_image(64, True, seed=1)
    for law in (_shot_law(5.0), _shot_law(300.0), _speckle_law(0.3)):
        k = law.sample_index(image, np.random.default_rng(4)).reshape(-1)
        u = uniform_u32(np.random.default_rng(4), image.size)
        expected = [np.searchsorted(law.thresholds[v], x, side="right") for v, x in zip(image.reshape(-1), u)]
        np.testing.assert_array_equal(k, expected)
