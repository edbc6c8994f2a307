"""The random corruptions follow the references' laws; the geometric ones sample like their references."""

import math

import numpy as np
import pytest
from scipy import ndimage

from hf_robustmed.corruptions import corrupt
from hf_robustmed.corruptions.artefacts import ink_masks
from hf_robustmed.corruptions.filters import clipped_zoom, motion_kernel

MID = np.full((224, 224, 3), 128, np.uint8)


def test_gaussian_noise_law():
    out = corrupt(MID, "gaussian_noise", 3, key=0).astype(float)  # ImageNet-C σ = 0.18
    noise = out - 128
    assert noise.mean() == pytest.approx(-0.5, abs=0.3)  # truncation shifts the mean by half a level
    assert noise.std() == pytest.approx(0.18 * 255, rel=0.03)
    channel_corr = np.corrcoef(noise[..., 0].ravel(), noise[..., 1].ravel())[0, 1]
    assert abs(channel_corr) < 0.02  # independent per channel


def test_speckle_noise_scales_with_intensity():
    image = np.zeros((224, 224, 3), np.uint8)
    image[:, :112] = 200
    image[:, 112:] = 50
    out = corrupt(image, "speckle_noise", 1, key=0).astype(float)  # σ = 0.15
    assert out[:, :112].std() == pytest.approx(200 * 0.15, rel=0.05)
    assert out[:, 112:].std() == pytest.approx(50 * 0.15, rel=0.05)


@pytest.mark.parametrize("severity,photons", [(1, 60), (4, 5)])
def test_shot_noise_is_poisson(severity, photons):
    out = corrupt(MID, "shot_noise", severity, key=severity).astype(float)
    reference = np.floor(
        np.clip(np.random.default_rng(9).poisson(128 / 255 * photons, MID.shape) / photons, 0, 1) * 255
    )
    assert out.mean() == pytest.approx(reference.mean(), rel=0.01)
    assert out.std() == pytest.approx(reference.std(), rel=0.03)
    values, counts = np.unique(out, return_counts=True)
    ref_values, ref_counts = np.unique(reference, return_counts=True)
    assert set(values) <= {math.floor(min(k / photons, 1) * 255) for k in range(10 * photons)}
    common = np.intersect1d(values, ref_values)
    ours = dict(zip(values, counts / counts.sum(), strict=True))
    theirs = dict(zip(ref_values, ref_counts / ref_counts.sum(), strict=True))
    assert max(abs(ours[v] - theirs[v]) for v in common) < 0.01


def test_impulse_noise_law():
    out = corrupt(MID, "impulse_noise", 4, key=0)  # amount 0.17
    salt, pepper = (out == 255).mean(), (out == 0).mean()
    assert salt + pepper == pytest.approx(0.17, rel=0.03)
    assert salt == pytest.approx(pepper, rel=0.06)
    assert ((out == 128) | (out == 0) | (out == 255)).all()


def test_zoom_matches_scipy_ndimage_zoom():
    plane = np.random.default_rng(0).random((224, 224)).astype(np.float32)
    for zoom in (1.0, 1.01, 1.07, 1.18, 1.3):
        crop = math.ceil(224 / zoom)
        top = (224 - crop) // 2
        zoomed = ndimage.zoom(plane[top : top + crop, top : top + crop], zoom, order=1)
        trim = (zoomed.shape[0] - 224) // 2
        expected = zoomed[trim : trim + 224, trim : trim + 224]
        np.testing.assert_allclose(clipped_zoom(plane, zoom), expected, atol=2e-6)


def test_motion_kernel_follows_imagemagick():
    kernel, half = motion_kernel(10.0, 3.0, 0.0)  # width 2·10 + 1 = 21 taps, one-sided, to the right
    assert half == 20
    row = kernel[half]
    assert np.count_nonzero(kernel) == 21 and np.count_nonzero(row) == 21
    assert row[:half].sum() == 0 and row[half] == row.max()
    np.testing.assert_allclose(
        row[half:], np.exp(-(np.arange(21) ** 2) / 18) / np.exp(-(np.arange(21) ** 2) / 18).sum(), rtol=1e-6
    )
    tilted, half = motion_kernel(15.0, 5.0, 45.0)
    ys, xs = np.nonzero(tilted)
    assert (ys >= half).all() and (xs >= half).all()  # θ = +45°: down and right, one-sided


def test_motion_blur_angle_is_uniform_on_plus_minus_45(monkeypatch):
    from hf_robustmed.corruptions import blur

    angles = []
    original = blur.motion_taps.__wrapped__

    def recording(radius, sigma, angle):
        angles.append(angle)
        return original(radius, sigma, angle)

    monkeypatch.setattr(blur, "motion_taps", recording)
    small = MID[:32, :32]
    for key in range(400):
        corrupt(small, "motion_blur", 2, key=key)
    angles = np.array(angles)
    assert angles.min() >= -45 and angles.max() <= 45
    assert angles.min() < -40 and angles.max() > 40 and abs(angles.mean()) < 4
    assert np.histogram(angles, bins=4, range=(-45, 45))[0].min() > 70  # roughly uniform


def test_ink_masks_like_the_reference():
    for size, fill in ((12, 0.70), (24, 0.62), (32, 0.54), (42, 0.53)):
        masks = ink_masks(size)
        assert masks.shape == (10, size, size) and set(np.unique(masks)) <= {0, 1}
        assert 0.45 <= masks.mean() <= 0.75, f"{size}px inks cover {masks.mean():.2f} (reference {fill})"
        assert len({m.tobytes() for m in masks}) == 10
    np.testing.assert_array_equal(ink_masks(24), ink_masks.__wrapped__(24))  # fixed shapes, not cached randomness


def test_stain_deposit_counts_and_sizes():
    white = np.full((224, 224, 3), 255, np.uint8)
    counts = []
    for key in range(40):
        out = corrupt(white, "stain_deposit", 5, suite="medmnist-c/pathmnist", key=key)  # up to 5 stains, 32 px
        black = (out == 0).all(axis=2)
        labels, n = ndimage.label(black)
        counts.append(n)
        ys, xs = np.nonzero(black)
        assert ys.min() >= 10 and xs.min() >= 10 and ys.max() < 214 and xs.max() < 214
    assert 1 <= min(counts) and max(counts) <= 5 + 5  # a blot may have a droplet apart; blots may touch
    assert np.mean(counts) > 2


def test_bubble_counts_and_translucency():
    black = np.zeros((224, 224, 3), np.uint8)
    for key in range(10):
        out = corrupt(black, "bubble", 1, suite="medmnist-c/bloodmnist", key=key)  # radius 3..5, 7..10 bubbles
        assert set(np.unique(out)) <= {0, 100, 130}  # white at α 100 inside, α 130 on the border
        _, n = ndimage.label(out[..., 0] > 0)
        assert 1 <= n <= 10


def test_characters_are_drawn_in_one_colour_per_word():
    grey = np.full((224, 224, 3), 128, np.uint8)
    changed = [
        (corrupt(grey, "characters", 5, suite="medmnist-c/dermamnist", key=k) != grey).any(axis=2).mean()
        for k in range(10)
    ]
    assert all(c > 0 for c in changed) and max(changed) < 0.2
