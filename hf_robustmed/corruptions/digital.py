"""Digital corruptions: pixelation and JPEG compression (through Pillow, as the references do) and elastic warps."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from .blur import _gaussian_sigma
from .registry import register_op


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)


def _array(pil: Image.Image, like: np.ndarray) -> np.ndarray:
    return np.asarray(pil).reshape(like.shape)


@register_op(
    "pixelate",
    category="digital",
    random=False,
    grey_native=True,
    param_doc="resize factor f (down by f, then back up)",
    ancestor="ImageNet-C / MedMNIST-C: Pillow resize with BOX, then BOX back",
)
def pixelate(image: np.ndarray, factor: float, rng: None, scale: float) -> np.ndarray:
    pil = _pil(image)
    width, height = pil.size
    small = pil.resize((max(1, int(width * factor)), max(1, int(height * factor))), Image.BOX)
    return _array(small.resize((width, height), Image.BOX), image)


@register_op(
    "jpeg_compression",
    category="digital",
    random=False,
    grey_native=False,
    param_doc="JPEG quality q",
    ancestor="ImageNet-C / MedMNIST-C: Pillow JPEG encode at quality q (4:2:0), decode",
)
def jpeg_compression(image: np.ndarray, quality: int, rng: None, scale: float) -> np.ndarray:
    buffer = io.BytesIO()
    _pil(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return _array(decoded.convert("RGB"), image)


@register_op(
    "elastic_transform",
    category="digital",
    random=True,
    grey_native=True,
    param_doc="displacement gain α (smoothing σ = 1 % of the size, raw shifts ≤ 0.5 % of the height)",
    ancestor="ImageNet-C elastic_transform as generalised by imagecorruptions (no affine part)",
)
def elastic_transform(image: np.ndarray, alpha: float, rng: np.random.Generator, scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    max_shift = height * 0.005
    sigma = 0.01 * min(height, width)
    fields = []
    for _ in range(2):
        raw = rng.uniform(-max_shift, max_shift, size=(height, width)).astype(np.float32)
        fields.append(_gaussian_sigma(raw, sigma, border=cv2.BORDER_REFLECT) * np.float32(alpha))
    dx, dy = fields
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    out = cv2.remap(image, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)
