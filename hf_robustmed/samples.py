"""Sample images made by code, for demos, docs and tests (no downloads, no asset files)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Modified Shepp–Logan phantom (Toft 1996): intensity, semi-axes a, b, centre x, y, rotation in degrees.
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0),
)


def shepp_logan(size: int = 224) -> np.ndarray:
    """The modified Shepp–Logan head phantom, the classic CT test image, as ``size × size`` uint8 grey."""
    coords = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(coords, -coords)
    image = np.zeros((size, size))
    for value, a, b, x0, y0, degrees in _SHEPP_LOGAN:
        theta = np.radians(degrees)
        xr = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
        yr = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
        image[(xr / a) ** 2 + (yr / b) ** 2 <= 1] += value
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def stained_cells(size: int = 224, seed: int = 0) -> np.ndarray:
    """A synthetic RGB microscopy-like field: pink background, purple nucleated cells (``size × size × 3``)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.empty((size, size, 3))
    image[:] = (0.93, 0.80, 0.85)
    for _ in range(max(3, size // 20)):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(0.04, 0.09) * size
        dist = np.hypot(yy - cy, xx - cx)
        image[dist <= r] = (0.80, 0.55, 0.70)
        image[dist <= 0.55 * r] = (0.38, 0.22, 0.55)
    image += rng.normal(0, 0.02, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


# Real medical images that PyPI packages ship under free licences (scikit-image, pydicom): for the demo pipeline
# and the Space. Each loader needs its package (the ``space`` extra installs both).
@dataclass(frozen=True)
class BundledSample:
    """A real medical image shipped by a PyPI package.

    Attributes:
        title: What it shows.
        modality: Its imaging modality, as a class name a zero-shot model can be prompted with.
        package: ``skimage`` or ``pydicom``; ``name`` the function (scikit-image) or test file (pydicom).
        source, licence: Where it comes from, under which licence.
        dataset: The benchmark dataset it is closest to.
    """

    title: str
    modality: str
    package: str
    name: str
    source: str
    licence: str
    dataset: str | None = None

    def load(self):
        """The image as a :class:`~hf_robustmed.medical_images.MedicalImage` (8-bit grey or RGB)."""
        from ._optional import require
        from .medical_images import ImageReadError, MedicalImage, read_medical_image

        if self.package == "skimage":
            data = require("skimage.data", "space", "bundled samples")
            pixels = np.ascontiguousarray(getattr(data, self.name)())
            return MedicalImage(pixels, "PNG/JPEG", f"8-bit {'RGB' if pixels.ndim == 3 else 'grey'}")
        path = require("pydicom.data", "space", "bundled DICOM samples").get_testdata_file(self.name)
        if path is None:
            raise ImageReadError(f"pydicom's test file {self.name} is not installed")
        return read_medical_image(path)


BUNDLED_SAMPLES: dict[str, BundledSample] = {
    "retina": BundledSample(
        "Retinal fundus photograph (RGB)",
        "retinal fundus photograph",
        "skimage",
        "retina",
        "scikit-image `data.retina()`: M. Häggström, “Fundus photograph of normal left eye”, Wikimedia Commons",
        "CC0 1.0",
        "fundus",
    ),
    "microaneurysms": BundledSample(
        "Fundus detail with microaneurysms (grey)",
        "retinal fundus photograph",
        "skimage",
        "microaneurysms",
        "scikit-image `data.microaneurysms()`: green channel of image 07_dr of the HRF fundus database "
        "(Budai et al. 2013)",
        "CC0 (given by the owner, A. Maier)",
        "retinamnist",
    ),
    "ihc": BundledSample(
        "Colon tissue, immunohistochemistry (RGB)",
        "histopathology slide",
        "skimage",
        "immunohistochemistry",
        "scikit-image `data.immunohistochemistry()`: colonic glands, FHL2 (DAB) with haematoxylin; Center for "
        "Microscopy and Molecular Imaging (CMMI)",
        "no known copyright restrictions",
        "pathmnist",
    ),
    "cell": BundledSample(
        "Cell, quantitative phase image (grey)",
        "microscopy image of a cell",
        "skimage",
        "cell",
        "scikit-image `data.cell()`: cell in saline, digital holographic microscopy (Müller et al. 2018)",
        "CC0 1.0",
        "bloodmnist",
    ),
    "ct": BundledSample(
        "CT slice (DICOM, 16-bit)",
        "computed tomography scan",
        "pydicom",
        "CT_small.dcm",
        'pydicom `get_testdata_file("CT_small.dcm")`: NEMA WG04 sample CT1_UNC, downsized to 128×128 by pydicom',
        "distributed with pydicom (MIT); pydicom's notes on its test files: no known restriction",
        "organamnist",
    ),
    "mr": BundledSample(
        "MR slice (DICOM, 16-bit)",
        "magnetic resonance scan",
        "pydicom",
        "MR_small.dcm",
        'pydicom `get_testdata_file("MR_small.dcm")`: NEMA WG04 sample MR1_UNC, downsized to 64×64 by pydicom',
        "distributed with pydicom (MIT); pydicom's notes on its test files: no known restriction",
    ),
}
