"""Digital corruptions: pixelation and JPEG compression (through Pillow, as the references do) and elastic warps."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from .filters import gaussian_sigma
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
    height, width = image.shape[:2]
    small = _pil(image).resize((max(1, int(width * factor)), max(1, int(height * factor))), Image.BOX)
    # Pillow's BOX upscaling takes the one source pixel under each target pixel's centre: that is OpenCV's
    # bit-exact nearest neighbour, several times faster (a test checks the whole path against Pillow's).
    return cv2.resize(np.asarray(small), (width, height), interpolation=cv2.INTER_NEAREST_EXACT).reshape(image.shape)


def pixelate_pillow(image: np.ndarray, factor: float) -> np.ndarray:
    """The reference's own path (Pillow BOX down and up), kept to check the fast path against."""
    pil = _pil(image)
    width, height = pil.size
    small = pil.resize((max(1, int(width * factor)), max(1, int(height * factor))), Image.BOX)
    return _array(small.resize((width, height), Image.BOX), image)


@register_op(
    "jpeg_compression",
    category="digital",
    random=False,
    grey_native=True,
    param_doc="JPEG quality q",
    ancestor="ImageNet-C / MedMNIST-C: Pillow JPEG encode at quality q (4:2:0), decode",
)
def jpeg_compression(image: np.ndarray, quality: int, rng: None, scale: float) -> np.ndarray:
    # OpenCV and Pillow both encode with libjpeg(-turbo) at the same settings (4:2:0, no optimisation) and give
    # identical bytes (a test checks this); OpenCV skips Pillow's stream overhead. A grey image encoded as one
    # luminance channel equals the reference's replicate → RGB JPEG → luma exactly (its chroma is constant).
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if image.shape[2] == 1:
        ok, buffer = cv2.imencode(".jpg", image, params)
        return cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE).reshape(image.shape)
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def jpeg_compression_pillow(image: np.ndarray, quality: int) -> np.ndarray:
    """The reference's own path (Pillow), kept to check that the OpenCV path gives the same bytes."""
    buffer = io.BytesIO()
    _pil(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return _array(decoded, image)


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
        fields.append(gaussian_sigma(raw, sigma, border=cv2.BORDER_REFLECT) * np.float32(alpha))
    dx, dy = fields
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    out = cv2.remap(image, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)
