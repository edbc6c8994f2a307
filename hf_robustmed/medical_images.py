"""Reading an arbitrary medical image file as an 8-bit array, with size limits and clear errors.

>>> from hf_robustmed.medical_images import read_medical_image
>>> image = read_medical_image("MR_small.dcm", max_bytes=32_000_000, max_pixels=36_000_000)
>>> image.pixels.shape, image.pixels.dtype, image.note
((64, 64), dtype('uint8'), 'DICOM MR, 16-bit, window C=600 W=1600')

Accepted: anything Pillow opens (PNG, JPEG, TIFF, BMP, WebP, GIF, ...) in any mode — 1-bit, grey, palette, RGB,
CMYK, with alpha (composited over black), 16-bit or 32-bit integer and float (``I;16``, ``I``, ``F``: scaled from
their minimum–maximum to 0–255) — and DICOM (``pydicom``, an optional dependency): the modality LUT (rescale
slope/intercept) is applied, then the file's first VOI window (``WindowCenter``/``WindowWidth``) or VOI LUT, else the
full minimum–maximum range; MONOCHROME1 is inverted; of a multi-frame file the middle frame is read.

The result is grey ``H×W`` or colour ``H×W×3`` uint8: what the corruption engine and every model take.

This is the one policy of every entry point: ``hf-robustmed corrupt`` and ``gallery`` read files with
:func:`read_medical_image`, the Space reads uploads with it, and benchmark sources built from a Hugging Face image
dataset or an image folder convert each decoded Pillow image with :func:`pil_to_uint8` (the same conversion).
A 12-bit scan stored in a 16-bit PNG therefore spans 0–255 everywhere; it is never shifted (``v >> 8``, nearly black)
nor saturated (Pillow's ``convert("RGB")``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageReadError", "MedicalImage", "pil_to_uint8", "read_medical_image", "scale_to_uint8"]

_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_COLOUR_CONVERSIONS = {
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
    "RGBX": "RGB",
    "RGBa": "RGBA",
    "La": "LA",
    "PA": "RGBA",
}


class ImageReadError(ValueError):
    """A file is not an image this module can read, or exceeds a limit; the message says which and why."""


@dataclass(frozen=True)
class MedicalImage:
    """An image read from a file.

    Attributes:
        pixels: Grey ``H×W`` or colour ``H×W×3`` uint8 array.
        format: The file format (``"DICOM"``, ``"PNG"``, ``"TIFF"``, ...).
        note: How the stored values were mapped to 8 bits, in words (for a status line).
    """

    pixels: np.ndarray
    format: str
    note: str


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _megapixels(n: float) -> str:
    return f"{n / 1e6:.1f} Mpx" if n >= 100_000 else f"{n:,} px"


def scale_to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Maps ``[low, high]`` linearly onto 0–255 (clipping outside), by default the finite minimum–maximum.

    Args:
        values: Any numeric array; NaN and infinite values become 0.
        low: Value mapped to 0 (default: the finite minimum).
        high: Value mapped to 255 (default: the finite maximum).

    Returns:
        A uint8 array of the same shape; all zeros for a constant image.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    low = float(values[finite].min()) if low is None else float(low)
    high = float(values[finite].max()) if high is None else float(high)
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = (np.where(finite, values, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _check_pixels(width: int, height: int, max_pixels: int | None, what: str = "image") -> None:
    if width < 1 or height < 1:
        raise ImageReadError(f"the {what} is empty ({width}×{height} px)")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"the {what} is {width}×{height} = {_megapixels(width * height)}; the limit is {_megapixels(max_pixels)}: "
            "downscale it first"
        )


def _composite_over_black(array: np.ndarray) -> np.ndarray:
    """``H×W×2`` (grey + alpha) or ``H×W×4`` (RGB + alpha) → colour premultiplied by alpha, i.e. over black."""
    colour, alpha = array[..., :-1].astype(np.uint32), array[..., -1:].astype(np.uint32)
    out = ((colour * alpha + 127) // 255).astype(np.uint8)
    return out[..., 0] if out.shape[-1] == 1 else out


def pil_to_uint8(pil: Image.Image) -> tuple[np.ndarray, str]:
    """An opened, loaded Pillow image (first frame) → 8-bit grey ``H×W`` or RGB ``H×W×3``, and a note on how.

    The conversion of the module docstring: EXIF orientation applied; 16/32-bit and float grey min–max scaled;
    1-bit, palette and other colour modes to grey or RGB; alpha composited over black.
    """
    pil = ImageOps.exif_transpose(pil) or pil
    mode = pil.mode
    if mode in _HIGH_DEPTH_MODES:
        values = np.asarray(pil)
        depth = {"F": "32-bit float", "I": "32-bit integer"}.get(mode, "16-bit")
        low, high = (float(np.nanmin(values)), float(np.nanmax(values))) if np.isfinite(values).any() else (0, 0)
        return scale_to_uint8(values), f"{depth} grey, min–max {low:g}…{high:g} scaled to 0–255"
    if mode == "1":
        return np.asarray(pil.convert("L")), "1-bit"
    if mode == "P":
        pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
    elif mode in _COLOUR_CONVERSIONS:
        pil = pil.convert(_COLOUR_CONVERSIONS[mode])
    if pil.mode not in ("L", "LA", "RGB", "RGBA"):
        pil = pil.convert("RGB")
    array = np.asarray(pil)
    if pil.mode in ("LA", "RGBA"):
        return _composite_over_black(array), f"8-bit {mode} (alpha composited over black)"
    return array, f"8-bit {mode}"


def _read_pil(data: bytes, max_pixels: int | None) -> MedicalImage:
    try:
        pil = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageReadError(
            "not an image file that can be read: accepted are PNG, JPEG, TIFF, BMP, WebP, GIF and DICOM (.dcm)"
        ) from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(f"the image is too large: {error}") from None
    except Exception as error:  # Pillow's format plugins raise OSError, SyntaxError, struct.error, ... on bad data
        raise ImageReadError(f"the image file is damaged: {error}") from None
    with pil:
        _check_pixels(*pil.size, max_pixels)
        try:
            pil.load()
            pixels, note = pil_to_uint8(pil)
        except Exception as error:  # truncated or corrupt data, unsupported variants (any error type of a plugin)
            raise ImageReadError(f"the {pil.format or 'image'} file is damaged or unsupported: {error}") from None
        return MedicalImage(np.ascontiguousarray(pixels), pil.format or "image", note)


def _is_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith(_DICOM_SUFFIXES)


def _first(value) -> float:
    """The first value of a DICOM attribute that may be multi-valued."""
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def _read_dicom(data: bytes, max_pixels: int | None) -> MedicalImage:
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise ImageReadError("reading DICOM files needs pydicom: pip install pydicom") from None
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut  # pydicom >= 3
    except ImportError:  # pydicom 2.x
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as error:
        raise ImageReadError(f"not a readable DICOM file: {error}") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError("the DICOM file has no pixel data (not an image: a report, structure set or plan?)")
    rows, columns, frames = int(ds.get("Rows", 0)), int(ds.get("Columns", 0)), int(ds.get("NumberOfFrames", 1) or 1)
    _check_pixels(columns, rows, max_pixels, "DICOM image")
    if max_pixels is not None and rows * columns * frames > 4 * max_pixels:
        raise ImageReadError(
            f"the DICOM file holds {frames} frames of {columns}×{rows}: more than {_megapixels(4 * max_pixels)} in all"
        )
    try:
        array = ds.pixel_array
    except Exception as error:  # pydicom raises RuntimeError/NotImplementedError/ValueError per decoder
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax)) if syntax is not None else "unknown transfer syntax"
        raise ImageReadError(f"cannot decode the DICOM pixel data ({name}): {error}") from None
    samples = int(ds.get("SamplesPerPixel", 1))
    if frames > 1:
        array = array[frames // 2]
    modality = str(ds.get("Modality", "")).strip()
    parts = [f"DICOM{' ' + modality if modality else ''}", f"{int(ds.get('BitsStored', 8))}-bit"]
    if frames > 1:
        parts.append(f"frame {frames // 2 + 1} of {frames}")
    if samples == 3:
        parts.append("colour, min–max scaled" if array.dtype != np.uint8 else "colour")
        pixels = array if array.dtype == np.uint8 else scale_to_uint8(array)
        return MedicalImage(np.ascontiguousarray(pixels), "DICOM", ", ".join(parts))
    values = np.asarray(apply_modality_lut(array, ds), dtype=np.float64)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds:
        parts.append("rescaled to Hounsfield units" if modality == "CT" else "modality LUT applied")
    if "WindowCenter" in ds and "WindowWidth" in ds and _first(ds.WindowWidth) > 0:
        centre, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        pixels = scale_to_uint8(values, centre - width / 2, centre + width / 2)
        parts.append(f"window C={centre:g} W={width:g}")
    elif "VOILUTSequence" in ds:
        pixels = scale_to_uint8(apply_voi_lut(values, ds))
        parts.append("VOI LUT")
    else:
        pixels = scale_to_uint8(values)
        parts.append("min–max scaled to 0–255")
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        pixels = 255 - pixels
        parts.append("MONOCHROME1 inverted")
    return MedicalImage(np.ascontiguousarray(pixels), "DICOM", ", ".join(parts))


def read_medical_image(
    source: str | os.PathLike | bytes,
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    name: str | None = None,
) -> MedicalImage:
    """Reads an image file of any common format and mode, or DICOM, as 8-bit grey or RGB (see the module docstring).

    Args:
        source: A file path, or the file's bytes.
        max_bytes: Largest accepted file size (``None``: no limit).
        max_pixels: Largest accepted width × height, checked before the pixels are decoded (``None``: no limit).
        name: File name used to recognise DICOM files without the ``DICM`` preamble (defaults to the path's name).

    Returns:
        The image, its format and a note on how it was mapped to 8 bits.

    Raises:
        ImageReadError: If the file is missing, too large, not an image, damaged, or uses an encoding that cannot be
            decoded here; the message says which.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), name or ""
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageReadError(f"image file not found: {path}")
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise ImageReadError(f"the file is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}")
        data, name = path.read_bytes(), name or path.name
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageReadError(f"the file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}")
    if not data:
        raise ImageReadError("the file is empty")
    if _is_dicom(data, name):
        return _read_dicom(data, max_pixels)
    return _read_pil(data, max_pixels)
