"""Image preprocessing as data, run batched on uint8 tensors wherever the model runs.

An :class:`ImageTransform` describes a model's native transform (resize mode, size, interpolation, centre crop,
mean/std, grey conversion); called on a uint8 batch it reproduces, with tensor ops on the batch's device, what the
per-image transform computes:

* resizing is the native library's own uint8 algorithm (:data:`RESIZE_BACKENDS`): Pillow's ``Image.resize``
  (behind every PIL-based transform) or torch's CPU uint8 kernel (behind transformers ≥ 5 image processors). Both
  are separable convolutions with fixed-point weights, horizontal pass first, rounded and clipped to uint8 after
  each pass; here each pass is an integer matrix product carried out exactly in float64, so the result is
  bit-exact on any device. ``interpolate(antialias=True)`` in float is not: it skips the intermediate uint8
  clipping (up to 21 grey levels apart from Pillow on noisy images);
* grey conversion is Pillow's integer ``convert("L")``; placing on a canvas, padding and cropping are integer
  index operations with the libraries' offsets;
* scaling to [0, 1] and normalising are the native library's float32 operations in its order (:data:`RESCALES`:
  torchvision's ``ToTensor`` + ``Normalize``, transformers ≤ 4.24's multiply-by-1/255, the fused form of
  transformers' torchvision backend).

So the tensor path equals the native per-image path bit for bit — max abs difference 0 — for open_clip (and
BiomedCLIP, PEFT adapters), UniMed-CLIP, MedCLIP, the ``rmc`` protocol and transformers CLIP, at every input size
and for grey and RGB input (``tests/test_preprocess.py``, ``tests/test_medclip.py``).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's and transformers' defaults
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
CHUNK_ELEMENTS = 1 << 25  # float64 elements per resize chunk (256 MiB)
# Pillow's RGB → L conversion (Convert.c, ITU-R 601-2 luma in 16-bit fixed point).
GREY_WEIGHTS = (19595, 38470, 7471)


def _pillow_bicubic(x: float) -> float:
    """Pillow's bicubic kernel (``bicubic_filter`` of Resample.c, a = -0.5), in its operation order."""
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _torch_bicubic(x: float) -> float:
    """torch's antialiasing bicubic kernel (``HelperInterpCubic::aa_filter``, a = -0.5), in its operation order."""
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2.0:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return 0.0


def _triangle(x: float) -> float:
    """The bilinear (triangle) kernel of both."""
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _pillow_precision(largest_weight: float) -> int:
    """Pillow's 8-bit resampling precision: always 22 fractional bits (``PRECISION_BITS``)."""
    return 22


def _torch_precision(largest_weight: float) -> int:
    """torch's uint8 precision (``_compute_index_ranges_int16_weights``): the most bits, up to 22, with which the
    largest weight still fits in an int16."""
    bits = 0
    while bits < 22 and int(0.5 + largest_weight * (1 << (bits + 1))) < (1 << 15):
        bits += 1
    return bits


@dataclass(frozen=True)
class ResizeBackend:
    """A uint8 antialiased resampler: its kernels (interpolation → (support, kernel)) and fixed-point precision."""

    kernels: Mapping[str, tuple[float, Callable[[float], float]]]
    precision: Callable[[float], int]


# Both compute weights alike (Pillow's support, centres, bounds and normalisation), round them to fixed point, sum
# in integers, add half, shift, clip to uint8 after each pass (horizontal first).
RESIZE_BACKENDS: Mapping[str, ResizeBackend] = {
    # Pillow's Image.resize (Resample.c): PIL-based transforms (torchvision on PIL images, open_clip, MedCLIP).
    "pillow": ResizeBackend({"bicubic": (2.0, _pillow_bicubic), "bilinear": (1.0, _triangle)}, _pillow_precision),
    # torch's CPU uint8 antialiased interpolate (UpSampleKernel.cpp), which torchvision uses on uint8 tensors:
    # transformers ≥ 5 image processors (torchvision resizes bilinear uint8 so only on AVX2/AVX512/ARM CPUs).
    "torch": ResizeBackend({"bicubic": (2.0, _torch_bicubic), "bilinear": (1.0, _triangle)}, _torch_precision),
}
PIL_RESAMPLE = {"bicubic": 3, "bilinear": 2}  # PIL's resample constants (Image.Resampling)


def _float_weights(in_size: int, out_size: int, support: float, kernel: Callable[[float], float]):
    """Per output index: the first input index and the normalised weights (``precompute_coeffs`` of Pillow,
    ``_compute_indices_min_size_weights_aa`` of torch: the same computation)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    inverse = 1.0 / filterscale
    taps = math.ceil(support) * 2 + 1
    rows = []
    for out in range(out_size):
        center = (out + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        count = min(max(min(int(center + support + 0.5), in_size) - lo, 0), taps)
        weights = [kernel((x - center + 0.5) * inverse) for x in range(lo, lo + count)]
        total = 0.0
        for weight in weights:  # summed in order, as the C loops
            total += weight
        rows.append((lo, [weight / total for weight in weights] if total != 0.0 else weights))
    return rows


@lru_cache(maxsize=256)
def resize_coefficients(in_size: int, out_size: int, interpolation: str, backend: str = "pillow"):
    """A backend's fixed-point resampling matrix (``out_size × in_size``, int64) for one axis, and its precision.

    The normalised weights scaled by ``2**precision`` and rounded half away from zero (``(int)(±0.5 + v)``).
    """
    resampler = RESIZE_BACKENDS[backend]
    rows = _float_weights(in_size, out_size, *resampler.kernels[interpolation])
    precision = resampler.precision(max([0.0] + [w for _, weights in rows for w in weights]))
    matrix = np.zeros((out_size, in_size), np.int64)
    for out, (lo, weights) in enumerate(rows):
        for x, weight in enumerate(weights, start=lo):
            value = weight * (1 << precision)
            matrix[out, x] = math.trunc(value - 0.5 if value < 0 else value + 0.5)
    return matrix, precision


def _resize_axis(images: torch.Tensor, coefficients: np.ndarray, precision: int) -> torch.Tensor:
    """One pass along the last axis of a uint8 tensor: integer sums (exact in float64: below 2**53), plus half,
    shifted right (floor), clipped to 0…255."""
    device = images.device if images.device.type != "mps" else torch.device("cpu")  # MPS has no float64
    matrix = torch.from_numpy(coefficients).to(device, torch.float64).T
    rows = max(1, CHUNK_ELEMENTS // (images.shape[-1] + matrix.shape[1]))
    flat = images.reshape(-1, images.shape[-1])
    half, unit = float(1 << precision >> 1), float(1 << precision)
    out = [
        torch.floor((chunk.to(device, torch.float64) @ matrix + half) / unit).clamp_(0, 255).to(torch.uint8)
        for chunk in flat.split(rows)
    ]
    return torch.cat(out).reshape(*images.shape[:-1], matrix.shape[1]).to(images.device)


def resize_uint8(
    images: torch.Tensor, height: int, width: int, interpolation: str = "bicubic", backend: str = "pillow"
) -> torch.Tensor:
    """Antialiased resize of a uint8 ``…×H×W`` tensor to ``height × width``, bit-exact with ``backend``.

    ``pillow``: ``Image.resize((width, height), resample)``; ``torch``: ``interpolate(antialias=True)`` of a uint8
    CPU tensor. Horizontal pass first, then vertical, each skipped when that side keeps its size.
    """
    if images.shape[-1] != width:
        images = _resize_axis(images, *resize_coefficients(images.shape[-1], width, interpolation, backend))
    if images.shape[-2] != height:
        coefficients, precision = resize_coefficients(images.shape[-2], height, interpolation, backend)
        images = _resize_axis(images.transpose(-1, -2), coefficients, precision).transpose(-1, -2)
    return images.contiguous()


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """Pillow's ``convert("L")`` of a uint8 ``N×3×H×W`` batch (``N×1×H×W``), bit-exact."""
    weights = torch.tensor(GREY_WEIGHTS, dtype=torch.int32, device=images.device).view(1, 3, 1, 1)
    luma = (images.to(torch.int32) * weights).sum(dim=1, keepdim=True) + (1 << 15)
    return (luma >> 16).to(torch.uint8)


# ------------------------------------------------------------------------------------------------ geometry


@dataclass(frozen=True)
class Place:
    """Put the image on a ``height × width`` canvas of the fill colour, its top-left corner at (top, left)."""

    height: int
    width: int
    top: int
    left: int

    def tensor(self, images: torch.Tensor, fill: int) -> torch.Tensor:
        canvas = images.new_full((*images.shape[:-2], self.height, self.width), fill)
        canvas[..., self.top : self.top + images.shape[-2], self.left : self.left + images.shape[-1]] = images
        return canvas

    def pil(self, image, fill: int):
        from PIL import Image

        canvas = Image.new(image.mode, (self.width, self.height), fill if image.mode == "L" else (fill,) * 3)
        canvas.paste(image, (self.left, self.top))
        return canvas


@dataclass(frozen=True)
class Resize:
    """Resize to ``height × width`` with a backend's antialiased uint8 algorithm (:data:`RESIZE_BACKENDS`)."""

    height: int
    width: int
    interpolation: str
    backend: str

    def tensor(self, images: torch.Tensor, fill: int) -> torch.Tensor:
        return resize_uint8(images, self.height, self.width, self.interpolation, self.backend)

    def pil(self, image, fill: int):
        if self.backend == "pillow":
            return image.resize((self.width, self.height), PIL_RESAMPLE[self.interpolation])
        from torchvision.transforms.v2 import functional

        pixels = functional.pil_to_tensor(image)
        mode = functional.InterpolationMode(self.interpolation)
        return functional.to_pil_image(functional.resize(pixels, [self.height, self.width], mode, antialias=True))


@dataclass(frozen=True)
class Crop:
    """Keep the ``height × width`` window whose top-left corner is at (top, left) (inside the image)."""

    height: int
    width: int
    top: int
    left: int

    def tensor(self, images: torch.Tensor, fill: int) -> torch.Tensor:
        return images[..., self.top : self.top + self.height, self.left : self.left + self.width]

    def pil(self, image, fill: int):
        return image.crop((self.left, self.top, self.left + self.width, self.top + self.height))


def _shortest(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision ``Resize(size)`` (and transformers ``shortest_edge``): short side → size, long side truncated."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def _longest(height: int, width: int, size: int) -> tuple[int, int]:
    """open_clip ``ResizeKeepRatio(longest=1)``: long side → size, the other rounded."""
    ratio = max(height / size, width / size)
    return round(height / ratio), round(width / ratio)


def _square(height: int, width: int, size: int) -> tuple[int, int]:
    return size, size


# resize mode → the size an ``H × W`` image is resized to (before the centre crop).
RESIZE_MODES: Mapping[str, Callable[[int, int, int], tuple[int, int]]] = {
    "shortest": _shortest,
    "longest": _longest,
    "squash": _square,
    "pad_square": _square,
}
# rescale rule → uint8 values (as a fresh float32 tensor, changed in place) scaled to [0, 1] and normalised once,
# in the native library's float32 operations (they round differently in the last bit).
RESCALES: Mapping[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    # torchvision ToTensor + Normalize (255 as a tensor: CUDA divides by a Python number as a reciprocal product)
    "divide": lambda pixels, mean, std: pixels.div_(pixels.new_tensor(255.0)).sub_(mean).div_(std),
    # transformers ≤ 4.24 feature extractors, MedCLIP's (ImageFeatureExtractionMixin: float32 image * (1 / 255))
    "multiply": lambda pixels, mean, std: pixels.mul_(1 / 255).sub_(mean).div_(std),
    # transformers ≥ 5 torchvision backend (fused: (x - mean / (1/255)) / (std / (1/255)))
    "fused": lambda pixels, mean, std: pixels.sub_(mean * 255.0).div_(std * 255.0),
}
# crop-offset rule → offset of a crop of ``crop`` pixels in ``side`` pixels.
CROP_OFFSETS: Mapping[str, Callable[[int, int], int]] = {
    "round": lambda side, crop: int(round((side - crop) / 2.0)),  # torchvision CenterCrop (round half to even)
    "floor": lambda side, crop: (side - crop) // 2,  # transformers image processors
}


# ------------------------------------------------------------------------------------------------ the transform


@dataclass(frozen=True)
class ImageTransform:
    """A model's image transform as data; call it on uint8 batches.

    Steps: grey conversion (``grey``) → for ``pad_square``, paste centred on a square canvas of side
    ``max(size, H, W)`` (offsets floored, as MedCLIP's ``pad_img``) → resize (``resize_mode``) → pad with ``fill``
    where smaller than the crop (torchvision's ``CenterCrop`` padding) → centre crop ``crop_size`` (offsets by
    ``crop_offset``) → channels replicated to 3 → scaled to [0, 1] and ``(x - mean) / std`` (``rescale``) →
    ``normalise_times - 1`` more ``(x - mean) / std``.

    Attributes:
        size: Resize target (short side for ``shortest``, long side for ``longest``, the square's side otherwise).
        resize_mode: ``shortest`` (torchvision ``Resize(size)``), ``longest`` (open_clip ``ResizeKeepRatio``),
            ``squash`` (to ``size × size``) or ``pad_square`` (MedCLIP: pad to a square, then to ``size × size``).
        interpolation: ``bicubic`` or ``bilinear`` (antialiased when downsampling).
        resize_backend: Whose uint8 resize to reproduce bit for bit: ``pillow`` (``Image.resize``, behind every
            PIL-based transform) or ``torch`` (torch's CPU uint8 kernel, behind transformers ≥ 5 processors).
        crop_size: Side of the centre crop, the output side (``None``: ``size``).
        crop_offset: ``round`` (torchvision, round half to even) or ``floor`` (transformers).
        rescale: How the native library computes ``(x / 255 - mean) / std`` in float32 (:data:`RESCALES`):
            ``divide`` (torchvision; also transformers' PIL-based processors), ``multiply`` (transformers ≤ 4.24
            feature extractors, MedCLIP's) or ``fused`` (transformers' torchvision-based processors).
        mean: Per-channel mean (one value: all channels).
        std: Per-channel std (one value: all channels).
        grey: Convert RGB to grey first, with Pillow's ``convert("L")`` (MedCLIP).
        normalise_times: How often ``Normalize`` is applied (2: the ``rmc`` protocol's CLIP defect D3).
        fill: Grey level of canvases and padding.
    """

    size: int
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    resize_backend: str = "pillow"
    crop_size: int | None = None
    crop_offset: str = "round"
    rescale: str = "divide"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    grey: bool = False
    normalise_times: int = 1
    fill: int = 0

    def __post_init__(self):
        for name, value, valid in (
            ("resize_mode", self.resize_mode, RESIZE_MODES),
            ("interpolation", self.interpolation, PIL_RESAMPLE),
            ("resize_backend", self.resize_backend, RESIZE_BACKENDS),
            ("crop_offset", self.crop_offset, CROP_OFFSETS),
            ("rescale", self.rescale, RESCALES),
        ):
            if value not in valid:
                raise ValueError(f"ImageTransform {name} must be one of {', '.join(valid)}, not {value!r}")
        if len(self.mean) not in (1, 3) or len(self.std) != len(self.mean):
            raise ValueError(f"mean and std need 1 or 3 values each, got {self.mean} and {self.std}")
        if self.normalise_times < 1:
            raise ValueError(f"normalise_times must be at least 1, got {self.normalise_times}")

    @property
    def output_size(self) -> int:
        """Side of the square output."""
        return self.crop_size or self.size

    def geometry(self, height: int, width: int) -> list[Place | Resize | Crop]:
        """The integer steps that take an ``height × width`` image to ``output_size × output_size``."""
        steps: list[Place | Resize | Crop] = []
        if self.resize_mode == "pad_square":
            side = max(self.size, height, width)
            steps.append(Place(side, side, (side - height) // 2, (side - width) // 2))
            height = width = side
        new_height, new_width = RESIZE_MODES[self.resize_mode](height, width, self.size)
        if (new_height, new_width) != (height, width):
            steps.append(Resize(new_height, new_width, self.interpolation, self.resize_backend))
        crop = self.output_size
        if crop > new_height or crop > new_width:
            padded_height, padded_width = max(crop, new_height), max(crop, new_width)
            steps.append(
                Place(padded_height, padded_width, max(crop - new_height, 0) // 2, max(crop - new_width, 0) // 2)
            )
            new_height, new_width = padded_height, padded_width
        if (new_height, new_width) != (crop, crop):
            offset = CROP_OFFSETS[self.crop_offset]
            steps.append(Crop(crop, crop, offset(new_height, crop), offset(new_width, crop)))
        return steps

    def __call__(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Preprocesses uint8 images into a float ``N×3×S×S`` batch on their device.

        Args:
            images: A uint8 ``N×C×H×W`` tensor (C = 1 grey or 3 RGB), or a sequence of uint8 ``C×H×W`` tensors of
                any sizes (processed in groups of equal shape and stacked in their order).

        Raises:
            ValueError: For another dtype, rank or channel count.
        """
        if isinstance(images, torch.Tensor):
            return self._batch(_check(images, 4))
        images = [_check(image, 3) for image in images]
        if not images:
            raise ValueError("no images to preprocess")
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(index)
        out = torch.empty((len(images), 3, self.output_size, self.output_size), device=images[0].device)
        for indices in groups.values():
            out[indices] = self._batch(torch.stack([images[i] for i in indices]))
        return out

    def _batch(self, images: torch.Tensor) -> torch.Tensor:
        if self.grey and images.shape[1] == 3:
            images = to_grey(images)
        for step in self.geometry(*images.shape[-2:]):
            images = step.tensor(images, self.fill)
        pixels = images.expand(-1, 3, -1, -1)
        return self.to_float(pixels, out=_reused_output(pixels.shape, pixels.device))

    def to_float(self, pixels: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 ``…×3×S×S`` pixels scaled and normalised in float32, as the native library does (``rescale``),
        then normalised again ``normalise_times - 1`` times as torchvision's ``Normalize``.

        On the CPU, through a per-channel table of the same float32 operations applied to the 256 uint8 values
        (``cv2.LUT``, one pass instead of four; bit-identical, since each output depends only on its value and
        channel). ``out``: a float32 tensor of the pixels' shape and device to write into (else a new one).
        """
        if out is None:
            out = torch.empty(pixels.shape, dtype=torch.float32, device=pixels.device)
        elif out.shape != pixels.shape or out.dtype != torch.float32 or out.device != pixels.device:
            raise ValueError(
                f"out must be float32 {tuple(pixels.shape)} on {pixels.device}, got {out.dtype} "
                f"{tuple(out.shape)} on {out.device}"
            )
        elif not out.is_contiguous():
            raise ValueError("out must be contiguous")
        if pixels.device.type == "cpu" and pixels.ndim >= 3 and pixels.shape[-3] == 3 and pixels.numel():
            return _apply_table(pixels, self._table(), out)
        return self._exact_float(pixels, out)

    def _exact_float(self, pixels: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The native float32 operations, elementwise on the whole tensor (the definition of :meth:`to_float`)."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=pixels.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=pixels.device).view(-1, 1, 1)
        pixels = RESCALES[self.rescale](out.copy_(pixels), mean, std)
        for _ in range(self.normalise_times - 1):
            pixels.sub_(mean).div_(std)
        return pixels

    def _table(self) -> np.ndarray:
        """``3 × 256`` float32: :meth:`_exact_float` of every uint8 value in every channel (on the CPU)."""
        return _float_table(self.rescale, self.mean, self.std, self.normalise_times)

    def pil_geometry(self, image):
        """The grey conversion and geometry on a PIL image (``L`` if ``grey``, else ``RGB``)."""
        image = image.convert("L" if self.grey else "RGB")
        for step in self.geometry(image.height, image.width):
            image = step.pil(image, self.fill)
        return image

    def to_pil(self) -> Callable:
        """The same transform on one PIL image (resized by the backend's library itself), ``3×S×S``."""
        return PilTransform(self)

    def describe(self) -> dict[str, Any]:
        """The transform as JSON-able data (for records)."""
        record = asdict(self)
        record.update(mean=list(self.mean), std=list(self.std), output_size=self.output_size)
        return record


@dataclass(frozen=True)
class PilTransform:
    """An :class:`ImageTransform` applied to one PIL image (picklable, for ``DataLoader`` workers)."""

    transform: ImageTransform

    def __call__(self, image) -> torch.Tensor:
        from torchvision.transforms.functional import pil_to_tensor

        return self.transform.to_float(pil_to_tensor(self.transform.pil_geometry(image)).expand(3, -1, -1))


@lru_cache(maxsize=64)
def _float_table(rescale: str, mean: tuple[float, ...], std: tuple[float, ...], normalise_times: int) -> np.ndarray:
    transform = ImageTransform(1, rescale=rescale, mean=mean, std=std, normalise_times=normalise_times)
    values = torch.arange(256, dtype=torch.uint8).expand(3, 1, 256)
    table = transform._exact_float(values, torch.empty((3, 1, 256))).reshape(3, 256).numpy()
    table.setflags(write=False)
    return table


def _apply_table(pixels: torch.Tensor, table: np.ndarray, out: torch.Tensor) -> torch.Tensor:
    """``out[…, c, :, :] = table[c][pixels[…, c, :, :]]`` for uint8 ``…×3×H×W`` CPU pixels, channel by channel."""
    import cv2

    side = pixels.shape[-2] * pixels.shape[-1]
    for c in range(3):
        # rows = images: views wherever each image's plane is contiguous (``out`` always: it is contiguous)
        source, target = pixels.select(-3, c).reshape(-1, side).numpy(), out.select(-3, c).view(-1, side).numpy()
        written = cv2.LUT(source, table[c], dst=target)
        if written.ctypes.data != target.ctypes.data:  # OpenCV wrote elsewhere (not seen; kept exact regardless)
            target[...] = written
    return out


_REUSE = threading.local()


@contextlib.contextmanager
def reuse_outputs() -> Iterator[None]:
    """Within the block, every batched :class:`ImageTransform` call on this thread writes its CPU output into one
    buffer per shape, the previous call's output of that shape, instead of a new tensor.

    For loops that are done with a batch before they preprocess the next (the evaluation): a fresh float batch
    (38 MB at 64 × 224 px) is allocated by ``mmap`` and costs more in page faults than the normalisation itself.
    Outputs of other devices, and of :meth:`ImageTransform.to_float` called directly, are always new tensors.
    """
    previous = getattr(_REUSE, "buffers", None)
    _REUSE.buffers = {}
    try:
        yield
    finally:
        _REUSE.buffers = previous


def _reused_output(shape: torch.Size, device: torch.device) -> torch.Tensor | None:
    """The buffer of :func:`reuse_outputs` for a float output of this shape (``None``: outside it, or not CPU)."""
    buffers = getattr(_REUSE, "buffers", None)
    if buffers is None or device.type != "cpu":
        return None
    if tuple(shape) not in buffers:
        buffers.clear()  # one shape at a time: a cell's last, smaller batch does not keep the full one alive
        buffers[tuple(shape)] = torch.empty(shape, dtype=torch.float32)
    return buffers[tuple(shape)]


def _check(images: torch.Tensor, ndim: int) -> torch.Tensor:
    if images.dtype != torch.uint8 or images.ndim != ndim or images.shape[-3] not in (1, 3):
        shape = "N×C×H×W" if ndim == 4 else "C×H×W"
        raise ValueError(
            f"images must be uint8 {shape} tensors with C = 1 or 3, got {images.dtype} {tuple(images.shape)}"
        )
    return images


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """A uint8 ``H×W`` (grey) or ``H×W×3`` array as a ``C×H×W`` tensor (what :class:`ImageTransform` takes)."""
    array = np.require(image, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"])  # copied only when needed
    tensor = torch.from_numpy(array)
    return tensor[None] if array.ndim == 2 else tensor.permute(2, 0, 1).contiguous()


# ------------------------------------------------------------------------------------------------ from native configs


def from_open_clip(preprocess_cfg: Mapping[str, Any]) -> ImageTransform | None:
    """The transform of an open_clip ``preprocess_cfg`` (``model.visual.preprocess_cfg``) at evaluation time.

    open_clip's ``image_transform(is_train=False)``: ``shortest`` → ``Resize(size)`` + ``CenterCrop``,
    ``longest`` → ``ResizeKeepRatio`` + ``CenterCropOrPad(fill_color)``, ``squash`` → ``Resize((size, size))``;
    ``random`` interpolation means bicubic at evaluation. ``None`` for a non-square size (not reproduced).
    """
    size = preprocess_cfg.get("size", 224)
    if isinstance(size, (tuple, list)):
        if len(size) != 2 or size[0] != size[1]:
            return None
        size = size[0]
    interpolation = preprocess_cfg.get("interpolation") or "bicubic"
    mean, std = preprocess_cfg.get("mean"), preprocess_cfg.get("std")
    return ImageTransform(
        size=int(size),
        resize_mode=preprocess_cfg.get("resize_mode") or "shortest",
        interpolation="bilinear" if interpolation == "bilinear" else "bicubic",
        mean=_channels(mean, OPENAI_MEAN),
        std=_channels(std, OPENAI_STD),
        fill=int(preprocess_cfg.get("fill_color", 0)),
    )


def _channels(values, default: tuple[float, ...]) -> tuple[float, ...]:
    if values is None:
        return default
    return tuple(float(v) for v in values) if isinstance(values, (tuple, list)) else (float(values),) * 3


def from_clip_image_processor(processor) -> ImageTransform | None:
    """The transform of a transformers CLIP image processor (``CLIPImageProcessor`` attributes).

    Reproduced: resizing to ``size`` ``{"shortest_edge"}`` or a square ``{"height", "width"}`` with bicubic or
    bilinear ``resample`` (torch's uint8 kernel or Pillow's, as the processor resizes), an optional square centre
    crop (offsets floored, as transformers' ``center_crop``), rescaling by 1/255 and the optional normalisation;
    ``None`` for any other setting.
    """
    size = _size_dict(processor.size) if getattr(processor, "do_resize", False) else {}
    crop = _size_dict(processor.crop_size) if getattr(processor, "do_center_crop", False) else {}
    interpolation = {v: k for k, v in PIL_RESAMPLE.items()}.get(int(getattr(processor, "resample", -1)))
    if "shortest_edge" in size and "longest_edge" not in size:
        mode, side = "shortest", size["shortest_edge"]
    elif size.keys() == {"height", "width"} and size["height"] == size["width"]:
        mode, side = "squash", size["height"]
    else:
        return None
    square_crop = not crop or (crop.keys() == {"height", "width"} and crop["height"] == crop["width"])
    rescaled = getattr(processor, "do_rescale", False) and math.isclose(processor.rescale_factor, 1 / 255)
    if interpolation is None or not square_crop or not rescaled or (mode == "shortest" and not crop):
        return None
    normalise = getattr(processor, "do_normalize", False)
    backend = _processor_backend(processor)
    return ImageTransform(
        size=int(side),
        resize_mode=mode,
        interpolation=interpolation,
        resize_backend=backend,
        crop_size=int(crop["height"]) if crop else None,
        crop_offset="floor",
        rescale="fused" if backend == "torch" else "divide",  # PIL-based: float64 product = float32 quotient
        mean=_channels(processor.image_mean, OPENAI_MEAN) if normalise else (0.0,),
        std=_channels(processor.image_std, OPENAI_STD) if normalise else (1.0,),
    )


def _processor_backend(processor) -> str:
    """``torch`` for processors that resize uint8 tensors with torchvision (transformers ≥ 5's default backend, the
    ``…Fast`` processors of transformers 4), ``pillow`` for those that resize PIL images."""
    torchvision = getattr(processor, "backend", None) == "torchvision" or type(processor).__name__.endswith("Fast")
    return "torch" if torchvision else "pillow"


def _size_dict(size) -> dict[str, int]:
    """An image processor's size (a dict, transformers 5's ``SizeDict`` or an int) as a dict of its set keys."""
    if isinstance(size, int):
        return {"shortest_edge": size}
    return {key: value for key, value in dict(size or {}).items() if value is not None}
