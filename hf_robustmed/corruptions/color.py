"""Colour and intensity corruptions.

Two families share the words *brightness*, *contrast* and *saturate*:

* MedMNIST-C's are Pillow ``ImageEnhance`` and torchvision operations on uint8 values (``pil_brightness``,
  ``pil_contrast``, ``gamma``) and scikit-image's HSV with an additive saturation shift (``saturate_shift``).
  They are point operations, so they run as 256-entry look-up tables, bit-exact with the references.
* ImageNet-C's (used by MediMeta-C) work in HSV (``hsv_brightness``, ``saturate``) or around per-channel means
  (``contrast``).

HSV edits keep the hue, so each is computed in closed form on RGB from small tables instead of converting there
and back (see :func:`_saturation_tables`).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ._common import pil_luma, quantize
from .registry import register_op


def _apply_lut(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return cv2.LUT(image, lut).reshape(image.shape)


@lru_cache(maxsize=1024)
def _pil_blend_lut(factor: float, mean: int = 0) -> np.ndarray:
    """Pillow's ``Image.blend(degenerate, image, factor)`` on uint8: ``int(m + f·(v − m))`` in float32, clipped."""
    v = np.arange(256, dtype=np.float32)
    m = np.float32(mean)
    out = m + np.float32(factor) * (v - m)
    return np.clip(np.trunc(out), 0, 255).astype(np.uint8)


@register_op(
    "pil_brightness",
    category="color",
    random=False,
    grey_native=True,
    param_doc="Pillow ImageEnhance.Brightness factor (> 1 brighter)",
    ancestor="MedMNIST-C brightness_up/down: blend with black",
)
def pil_brightness(image: np.ndarray, factor: float, rng: None, scale: float) -> np.ndarray:
    return _apply_lut(image, _pil_blend_lut(float(factor)))


@register_op(
    "pil_contrast",
    category="color",
    random=False,
    grey_native=True,
    param_doc="Pillow ImageEnhance.Contrast factor (> 1 more contrast)",
    ancestor="MedMNIST-C contrast_up/down: blend with the mean luma",
)
def pil_contrast(image: np.ndarray, factor: float, rng: None, scale: float) -> np.ndarray:
    # `grey_native` holds because the mean is taken over the luma image, which for a grey image is the image.
    mean = cv2.mean(pil_luma(image))[0]
    return _apply_lut(image, _pil_blend_lut(float(factor), int(mean + 0.5)))


@register_op(
    "gamma",
    category="color",
    random=False,
    grey_native=True,
    param_doc="γ (> 1 darker, < 1 brighter)",
    ancestor="MedMNIST-C gamma_corr_up/down: torchvision adjust_gamma(gain=1)",
)
def gamma(image: np.ndarray, gamma_value: float, rng: None, scale: float) -> np.ndarray:
    return _apply_lut(image, _gamma_lut(float(gamma_value)))


@lru_cache(maxsize=256)
def _gamma_lut(gamma_value: float) -> np.ndarray:
    v = np.arange(256, dtype=np.float32) / np.float32(255)
    return (np.clip(v ** np.float32(gamma_value), 0, 1) * np.float32(255 + 1 - 1e-3)).astype(np.uint8)


@lru_cache(maxsize=256)
def _saturation_tables(gain: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Per (V, min) pair: the factor r with channel' = V − (V − channel)·r, and the grey pixels' G, B.

    With hue and value fixed, every channel is ``V·(1 − S·t)`` for a per-channel ``t`` that depends on hue only,
    so replacing S by S' maps a channel c to ``V − (V − c)·S'/S`` and ``S'/S`` depends only on (V, min). Pixels
    with S = 0 get hue 0 (red) from scikit-image: R = V and G = B = V·(1 − S').
    """
    value = np.arange(256, dtype=np.float64)[:, None] / 255.0
    low = np.arange(256, dtype=np.float64)[None, :] / 255.0
    chroma = np.maximum(value - low, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = np.where(value > 0, chroma / np.where(value > 0, value, 1.0), 0.0)
        new_saturation = np.clip(saturation * gain + shift, 0.0, 1.0)
        ratio = np.where(chroma > 0, new_saturation * value / np.where(chroma > 0, chroma, 1.0), 0.0)
    grey_new_s = np.clip(shift, 0.0, 1.0)  # S = 0 for grey pixels
    grey_gb = quantize(value[:, 0] * (1.0 - grey_new_s), top=1.0)
    return ratio.astype(np.float32), grey_gb


def _max_of(planes: tuple[np.ndarray, ...]) -> np.ndarray:
    """HSV value V of an RGB image given as its three planes: their element-wise maximum."""
    return cv2.max(cv2.max(planes[0], planes[1]), planes[2])


def _set_saturation(image: np.ndarray, gain: float, shift: float) -> np.ndarray:
    """HSV saturation S ← clip(S·gain + shift, 0, 1), keeping hue and value (scikit-image's conventions).

    Works on the three planes separately (OpenCV's element-wise min/max, no broadcasting over a length-3 axis);
    every float32 operation is the same as on the whole image, so the result is too.
    """
    ratio_table, grey_gb = _saturation_tables(float(gain), float(shift))
    planes = cv2.split(image)
    value, low = _max_of(planes), cv2.min(cv2.min(planes[0], planes[1]), planes[2])
    index = value.astype(np.uint16)
    index <<= 8
    index |= low
    ratio = np.take(ratio_table, index)  # np.take: several times faster than fancy indexing
    v = value.astype(np.float32)
    out = []
    for plane in planes:
        channel = v - plane
        channel *= ratio
        np.subtract(v, channel, out=channel)
        channel *= np.float32(1 / 255)
        out.append(quantize(channel, top=1.0))
    grey = value == low
    if grey.any():
        out[1][grey] = out[2][grey] = grey_gb[value[grey]]
    return cv2.merge(out)


@register_op(
    "saturate_shift",
    category="color",
    random=False,
    grey_native=False,
    param_doc="additive shift c of HSV saturation",
    ancestor="MedMNIST-C saturate: scikit-image rgb2hsv, S ← clip(S + c, 0, 1), hsv2rgb",
)
def saturate_shift(image: np.ndarray, shift: float, rng: None, scale: float) -> np.ndarray:
    return _set_saturation(image, 1.0, shift)


@register_op(
    "saturate",
    category="color",
    random=False,
    grey_native=False,
    param_doc="(a, b): HSV saturation S ← clip(S·a + b, 0, 1)",
    ancestor="ImageNet-C saturate",
)
def saturate(image: np.ndarray, param: tuple[float, float], rng: None, scale: float) -> np.ndarray:
    gain, shift = param
    return _set_saturation(image, gain, shift)


@register_op(
    "hsv_brightness",
    category="color",
    random=False,
    grey_native=True,
    param_doc="additive shift c of HSV value",
    ancestor="ImageNet-C brightness: rgb2hsv, V ← clip(V + c, 0, 1), hsv2rgb",
)
def hsv_brightness(image: np.ndarray, shift: float, rng: None, scale: float) -> np.ndarray:
    # With hue and saturation fixed every channel scales with V; black pixels (V = 0) become grey V'.
    # A channel's output depends only on (V, its value): a 256×256 table. For a grey image every channel
    # equals V, so the operation is grey-native.
    value = image[..., 0] if image.shape[2] == 1 else _max_of(cv2.split(image))
    index = np.repeat(value[..., None].astype(np.uint16), image.shape[2], axis=2)
    index <<= 8
    index |= image
    return np.take(_hsv_brightness_table(float(shift)), index)  # np.take: several times faster than fancy indexing


@lru_cache(maxsize=32)
def _hsv_brightness_table(shift: float) -> np.ndarray:
    v = np.arange(256, dtype=np.float64)[:, None] / 255.0
    c = np.arange(256, dtype=np.float64)[None, :] / 255.0
    new_v = np.clip(v + shift, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(v > 0, c * (new_v / np.where(v > 0, v, 1.0)), new_v)
    return quantize(out, top=1.0)


@register_op(
    "contrast",
    category="color",
    random=False,
    grey_native=True,
    param_doc="factor c around each channel's mean",
    ancestor="ImageNet-C contrast: Q((x − μ)·c + μ)",
)
def contrast(image: np.ndarray, factor: float, rng: None, scale: float) -> np.ndarray:
    # A point operation per channel once the channel means are known: one 256-entry table per channel.
    means = image.reshape(-1, image.shape[2]).mean(axis=0, dtype=np.float64)
    levels = np.arange(256, dtype=np.float64)
    planes = [
        _apply_lut(np.ascontiguousarray(image[..., c]), quantize((levels - m) * factor + m))
        for c, m in enumerate(means)
    ]
    return np.stack(planes, axis=2)
