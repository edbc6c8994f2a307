"""The corruption engine: every corruption × severity × suite, on RGB and grey images at 28 and 224 px."""

import numpy as np
import pytest
from conftest import require, textured_image
from PIL import Image, ImageDraw

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
IMAGES = {(size, rgb): textured_image(size, rgb, seed=size) for size in (28, 224) for rgb in (True, False)}
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
        "brightness",
        "contrast",
        "gaussian_noise",
        "impulse_noise",
        "motion_blur",
        "pixelate",
        "zoom_blur",
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
        (dict(name="pixelate", severity=5.5), "severity must be in 1..5"),
        (dict(name="pixelate", severity=float("nan")), "severity must be in 1..5"),
        (dict(name="pixelate", severity=True), "severity must be an integer in 1..5 or a float"),
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
    single = [corrupt(img, "shot_noise", 4, key=k) for img, k in zip(images, keys, strict=True)]
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
    parallel = list(
        iter_corrupt(iter(images), "motion_blur", 3, suite="medimeta-c", seed=7, num_workers=2, chunk_size=2)
    )
    assert len(parallel) == len(serial)
    for a, b in zip(serial, parallel, strict=True):
        assert a.tobytes() == b.tobytes()


def test_fast_paths_equal_the_pillow_reference_paths():
    """JPEG through OpenCV and pixelation's nearest-neighbour upscaling equal Pillow's, which the references use."""
    from hf_robustmed.corruptions.digital import jpeg_compression, jpeg_compression_pillow, pixelate, pixelate_pillow

    for rgb in (True, False):
        image = textured_image(224, rgb, seed=2)
        image = image if rgb else image[..., None]
        for quality in (5, 7, 10, 15, 20, 25, 30, 50):
            np.testing.assert_array_equal(
                jpeg_compression(image, quality, None, 1.0), jpeg_compression_pillow(image, quality)
            )
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
        expected = [
            np.searchsorted(law.thresholds[v], x, side="right") for v, x in zip(image.reshape(-1), u, strict=True)
        ]
        np.testing.assert_array_equal(k, expected)


# -- fast paths against the straightforward algorithms they replace --------------------------------------------------

FAST_PATH_SHAPES = [(28, 28), (64, 64), (128, 128), (224, 224), (97, 131), (150, 120)]


def _shape_images(channels: int = 3):
    for shape in FAST_PATH_SHAPES:
        image = textured_image(max(shape), channels == 3, seed=shape[0])[: shape[0], : shape[1]]
        yield image.reshape(*shape, channels)


def _motion_blur_by_shifts(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's motion blur as a float64 sum of shifted copies (edges repeated), quantised like Q16."""
    from hf_robustmed.corruptions.filters import motion_taps

    taps = motion_taps(radius, sigma, angle)
    margin = max(max(abs(y), abs(x)) for y, x, _ in taps)
    padded = np.pad(image.astype(np.float64), ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    total = sum(w * padded[margin + y : margin + y + height, margin + x : margin + x + width] for y, x, w in taps)
    return (np.floor(total * 257 + 0.5) // 257).astype(np.uint8)


def test_motion_blur_equals_the_sum_of_shifted_copies():
    """Banded filter2D calls give the shift-and-sum result up to float32 rounding: ±1 on a few pixels in 10⁵."""
    from hf_robustmed.corruptions.blur import motion_blur_at

    differing, total = 0, 0
    for channels in (3, 1):
        for image in _shape_images(channels):
            for radius, sigma in [(3, 3), (10, 5), (20, 15)]:
                for angle in (-45.0, -31.7, -8.2, 0.0, 12.5, 33.3, 45.0):
                    ours = motion_blur_at(image, radius, sigma, angle).astype(int)
                    difference = np.abs(ours - _motion_blur_by_shifts(image, radius, sigma, angle))
                    assert difference.max() <= 1, (image.shape, radius, sigma, angle)
                    differing, total = differing + np.count_nonzero(difference), total + difference.size
    assert differing / total < 1e-4, differing / total


def test_q16_output_path_is_the_floor_division():
    from hf_robustmed.corruptions.filters import imagemagick_q16_to_8bit

    levels = np.concatenate([np.linspace(0, 255, 2_000_003, dtype=np.float32), np.arange(256, dtype=np.float32)])
    levels = np.concatenate([levels, np.nextafter(levels, np.float32(0)), np.nextafter(levels, np.float32(256))])
    levels = np.clip(levels, 0, 255 * (1 + 1e-5)).astype(np.float32)
    quantum = np.floor(np.clip(levels, 0, 255) * np.float32(257) + np.float32(0.5))
    expected = (quantum // np.float32(257)).astype(np.uint8)
    np.testing.assert_array_equal(imagemagick_q16_to_8bit(levels.copy()), expected)


def _zoom_blur_plane_by_plane(image: np.ndarray, factors: tuple[float, ...]) -> np.ndarray:
    """Zoom blur as first written: float64 division, every factor (1 included) zoomed, one plane at a time."""
    from hf_robustmed.corruptions._common import quantize
    from hf_robustmed.corruptions.filters import clipped_zoom

    planes = np.ascontiguousarray((image / 255.0).astype(np.float32).transpose(2, 0, 1))
    out = np.zeros_like(planes)
    for channel, plane in enumerate(planes):
        for zoom in factors:
            out[channel] += clipped_zoom(plane, float(zoom))
    out += planes
    out /= np.float32(len(factors) + 1)
    return quantize(out.transpose(1, 2, 0), top=1.0)


def test_zoom_blur_equals_the_plane_by_plane_algorithm():
    from hf_robustmed.corruptions.blur import zoom_blur

    for channels in (3, 1):
        for image in _shape_images(channels):
            for factors in SUITES["imagenet-c"].corruptions["zoom_blur"].params:
                expected = _zoom_blur_plane_by_plane(image, factors)
                np.testing.assert_array_equal(zoom_blur(image, factors, None, 1.0), expected)


def _saturation_with_broadcasting(image: np.ndarray, gain: float, shift: float) -> np.ndarray:
    """The closed-form HSV saturation edit on the whole H×W×3 array at once (the first implementation)."""
    from hf_robustmed.corruptions._common import quantize
    from hf_robustmed.corruptions.color import _saturation_tables

    ratio_table, grey_gb = _saturation_tables(float(gain), float(shift))
    value, low = image.max(axis=2), image.min(axis=2)
    v = value[..., None].astype(np.float32)
    out = v - (v - image) * ratio_table[value, low][..., None]
    out *= np.float32(1 / 255)
    result = quantize(out, top=1.0)
    grey = value == low
    result[grey, 1] = result[grey, 2] = grey_gb[value[grey]]
    return result


def test_saturation_equals_the_whole_array_algorithm():
    from hf_robustmed.corruptions.color import _set_saturation

    entries = [e for s in SUITES.values() for e in s.corruptions.values() if e.op in ("saturate", "saturate_shift")]
    params = {p for e in entries for p in e.params}
    for image in _shape_images(3):
        image = image.copy()
        image[:5] = image[:5].min(axis=2, keepdims=True)  # grey rows: the S = 0 branch
        for param in params:
            gain, shift = param if isinstance(param, tuple) else (1.0, param)
            expected = _saturation_with_broadcasting(image, gain, shift)
            np.testing.assert_array_equal(_set_saturation(image, gain, shift), expected)


def test_defocus_kernel_without_denormals_gives_the_same_bytes():
    """Weights below float32's normal range are dropped from the disk kernel; the filtered images do not change."""
    import cv2

    from hf_robustmed.corruptions._common import quantize
    from hf_robustmed.corruptions.blur import _aliased_disk

    def kernel_with_denormals(radius: float, alias: float) -> np.ndarray:
        """ImageNet-C's kernel cropped (centred) to its non-zero support, denormal weights included."""
        grid, ksize = (np.arange(-8, 9), (3, 3)) if radius <= 8 else (np.arange(-int(radius), int(radius) + 1), (5, 5))
        xx, yy = np.meshgrid(grid, grid)
        disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
        kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=ksize, sigmaX=alias)
        centre, support = len(grid) // 2, np.flatnonzero(kernel.any(axis=0))
        half = max(centre - support[0], support[-1] - centre)
        return kernel[centre - half : centre + half + 1, centre - half : centre + half + 1]

    params = {p for s in SUITES.values() for e in s.corruptions.values() if e.op == "defocus_blur" for p in e.params}
    for shape in [(224, 224), (224, 300)]:
        image = textured_image(max(shape), True, seed=7)[: shape[0], : shape[1]]
        unit = image.astype(np.float32) * np.float32(1 / 255)
        for radius, alias in params:
            kernel = _aliased_disk(float(radius), float(alias))
            assert not np.any((kernel > 0) & (kernel < np.finfo(np.float32).tiny))
            ours = cv2.filter2D(unit, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
            full = cv2.filter2D(unit, -1, kernel_with_denormals(radius, alias), borderType=cv2.BORDER_REFLECT_101)
            np.testing.assert_array_equal(
                quantize(ours, top=1.0), quantize(full, top=1.0), err_msg=f"{(radius, alias)}"
            )


def test_bubble_stamps_equal_pillow_drawing():
    """Cached bubble stamps, clipped at the borders, give the alpha that Pillow's ellipses give in place."""
    from hf_robustmed.corruptions.artefacts import _INSIDE_ALPHA, _RIM_ALPHA, _bubble_stamp, _paste_stamp

    rng = np.random.default_rng(0)
    for height, width in [(28, 28), (97, 131), (224, 224)]:
        for border in (1, 2):
            canvas = Image.new("L", (width, height), 0)
            draw = ImageDraw.Draw(canvas)
            stamped = np.zeros((height, width), np.uint8)
            for _ in range(60):
                r = int(rng.integers(1, 13))
                cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
                draw.ellipse((cx - r - border, cy - r - border, cx + r + border, cy + r + border), fill=_RIM_ALPHA)
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_INSIDE_ALPHA)
                _paste_stamp(stamped, _bubble_stamp(r, border), cy - r - border, cx - r - border)
                np.testing.assert_array_equal(stamped, np.asarray(canvas))


def test_glass_blur_offsets_and_swap_walks_agree(monkeypatch):
    """int32 offset draws equal the default int64 ones; the compiled swap walk equals the Python one."""
    from hf_robustmed.corruptions import _kernels, blur

    for margin in (1, 2, 3, 4):
        wide = np.random.default_rng(margin).integers(-margin, margin, size=(5000, 2))
        narrow = np.random.default_rng(margin).integers(-margin, margin, size=(5000, 2), dtype=np.int32)
        np.testing.assert_array_equal(wide, narrow)
    if _kernels.compiled("swap_walk") is None:
        require("numba")  # a [dev] dependency: its absence fails under CI=true
        pytest.skip("HF_ROBUSTMED_NO_JIT is set: only the Python swap walk runs")
    rng = np.random.default_rng(0)
    src = np.arange(4800, 300, -1)
    walk = [rng.integers(-3, 3, size=(src.size, 2), dtype=np.int32) for _ in range(3)]
    compiled = blur._swap_walk(72, 71, src, walk)
    monkeypatch.setattr(_kernels, "compiled", lambda name: None)
    np.testing.assert_array_equal(compiled, blur._swap_walk(72, 71, src, walk))
