"""MedMNIST+ (v3) sources: ``{flag}[_{size}].npz`` files, and the published MedMNIST-C release."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..download import download
from .arrays import NpzArray
from .source import SourceSplit

ZENODO_RECORD = "10519652"
URL = "https://zenodo.org/records/{record}/files/{filename}?download=1"
MEDMNIST_C_URL = "https://zenodo.org/records/11471504/files/{flag}.zip?download=1"

CITATION = (
    "@article{medmnistv2, title={MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image "
    "classification}, author={Yang, Jiancheng and Shi, Rui and Wei, Donglai and Liu, Zequan and Zhao, Lin and Ke, "
    "Bilian and Pfister, Hanspeter and Ni, Bingbing}, journal={Scientific Data}, volume={10}, number={1}, "
    "pages={41}, year={2023}}"
)
MEDMNIST_C_CITATION = (
    "@article{disalvo2024medmnistc, title={MedMNIST-C: Comprehensive benchmark and improved classifier robustness by "
    "simulating realistic image corruptions}, author={Di Salvo, Francesco and Doerrich, Sebastian and Ledig, "
    "Christian}, journal={arXiv preprint arXiv:2406.17536}, year={2024}}"
)


@dataclass(frozen=True)
class MedMNISTInfo:
    """MedMNIST's metadata for one 2-D dataset (its ``INFO`` entry, the parts we need)."""

    flag: str
    modality: str
    task: str
    rgb: bool
    labels: tuple[str, ...]
    license: str
    md5: dict[int, str]

    @property
    def multilabel(self) -> bool:
        return self.task == "multi-label, binary-class"


_CC_BY = "cc-by-4.0"


def _md5(px28: str, px64: str, px128: str, px224: str) -> dict[int, str]:
    """MD5 of each size's file, from the ``medmnist`` package's ``INFO`` (3.0.2: ``MD5``, ``MD5_64`` …)."""
    return {28: px28, 64: px64, 128: px128, 224: px224}


_ORGAN_LABELS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)

MEDMNIST_INFO: dict[str, MedMNISTInfo] = {
    info.flag: info
    for info in (
        MedMNISTInfo(
            "pathmnist",
            "colon pathology",
            "multi-class",
            True,
            (
                "adipose",
                "background",
                "debris",
                "lymphocytes",
                "mucus",
                "smooth muscle",
                "normal colon mucosa",
                "cancer-associated stroma",
                "colorectal adenocarcinoma epithelium",
            ),
            _CC_BY,
            _md5(
                "a8b06965200029087d5bd730944a56c1",
                "55aa9c1e0525abe5a6b9d8343a507616",
                "ac42d08fb904d92c244187169d1fd1d9",
                "2c51a510bcdc9cf8ddb2af93af1eadec",
            ),
        ),
        MedMNISTInfo(
            "chestmnist",
            "chest X-ray",
            "multi-label, binary-class",
            False,
            (
                "atelectasis",
                "cardiomegaly",
                "effusion",
                "infiltration",
                "mass",
                "nodule",
                "pneumonia",
                "pneumothorax",
                "consolidation",
                "edema",
                "emphysema",
                "fibrosis",
                "pleural",
                "hernia",
            ),
            _CC_BY,
            _md5(
                "02c8a6516a18b556561a56cbdd36c4a8",
                "9de6cd0b934ebb5b7426cfba5efbae16",
                "db107e5590b27930b62dbaf558aebee3",
                "45bd33e6f06c3e8cdb481c74a89152aa",
            ),
        ),
        MedMNISTInfo(
            "dermamnist",
            "dermatoscope",
            "multi-class",
            True,
            (
                "actinic keratoses and intraepithelial carcinoma",
                "basal cell carcinoma",
                "benign keratosis-like lesions",
                "dermatofibroma",
                "melanoma",
                "melanocytic nevi",
                "vascular lesions",
            ),
            "cc-by-nc-4.0",
            _md5(
                "0744692d530f8e62ec473284d019b0c7",
                "b70a2f5635c6199aeaa28c31d7202e1f",
                "2defd784463fa5243564e855ed717de1",
                "8974907d8e169bef5f5b96bc506ae45d",
            ),
        ),
        MedMNISTInfo(
            "octmnist",
            "retinal OCT",
            "multi-class",
            False,
            ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
            _CC_BY,
            _md5(
                "c68d92d5b585d8d81f7112f81e2d0842",
                "e229e9440236b774d9f0dfef9d07bdaf",
                "0a97e76651ace45c5d943ee3f65b63ae",
                "abc493b6d529d5de7569faaef2773ba3",
            ),
        ),
        MedMNISTInfo(
            "pneumoniamnist",
            "chest X-ray",
            "binary-class",
            False,
            ("normal", "pneumonia"),
            _CC_BY,
            _md5(
                "28209eda62fecd6e6a2d98b1501bb15f",
                "8f4eceb4ccffa70c672198ea285246c6",
                "05b46931834c231683c68f40c47b2971",
                "d6a3c71de1b945ea11211b03746c1fe1",
            ),
        ),
        MedMNISTInfo(
            "retinamnist",
            "fundus camera",
            "ordinal-regression",
            True,
            ("0", "1", "2", "3", "4"),
            _CC_BY,
            _md5(
                "bd4c0672f1bba3e3a89f0e4e876791e4",
                "afda852cc34dcda56f86ad2b2457dbcc",
                "e48e916a24454daf90583d4e6efb1a18",
                "eae7e3b6f3fcbda4ae613ebdcbe35348",
            ),
        ),
        MedMNISTInfo(
            "breastmnist",
            "breast ultrasound",
            "binary-class",
            False,
            ("malignant", "normal, benign"),
            _CC_BY,
            _md5(
                "750601b1f35ba3300ea97c75c52ff8f6",
                "742edef2a1fd1524b2efff4bd7ba9364",
                "363e4b3f8d712e9b5de15470a2aaadf1",
                "b56378a6eefa9fed602bb16d192d4c8b",
            ),
        ),
        MedMNISTInfo(
            "bloodmnist",
            "blood cell microscope",
            "multi-class",
            True,
            (
                "basophil",
                "eosinophil",
                "erythroblast",
                "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
                "lymphocyte",
                "monocyte",
                "neutrophil",
                "platelet",
            ),
            _CC_BY,
            _md5(
                "7053d0359d879ad8a5505303e11de1dc",
                "2b94928a2ae4916078ca51e05b6b800b",
                "adace1e0ed228fccda1f39692059dd4c",
                "b718ff6835fcbdb22ba9eacccd7b2601",
            ),
        ),
        MedMNISTInfo(
            "tissuemnist",
            "kidney cortex microscope",
            "multi-class",
            False,
            (
                "Collecting Duct, Connecting Tubule",
                "Distal Convoluted Tubule",
                "Glomerular endothelial cells",
                "Interstitial endothelial cells",
                "Leukocytes",
                "Podocytes",
                "Proximal Tubule Segments",
                "Thick Ascending Limb",
            ),
            _CC_BY,
            _md5(
                "ebe78ee8b05294063de985d821c1c34b",
                "123ece2eba09d0aa5d698fda57103344",
                "61b955355d7425a89687b06cca3ce0c2",
                "b077128c4a949f0a4eb01517f9037b9c",
            ),
        ),
        MedMNISTInfo(
            "organamnist",
            "abdominal CT",
            "multi-class",
            False,
            _ORGAN_LABELS,
            _CC_BY,
            _md5(
                "68e3f8846a6bd62f0c9bf841c0d9eacc",
                "2dcccc29b88e6da5a01161ef20cda288",
                "eeae80d0a227a8d099027e1b3cfd3b60",
                "50747347e05c87dd3aaf92c49f9f3170",
            ),
        ),
        MedMNISTInfo(
            "organcmnist",
            "abdominal CT",
            "multi-class",
            False,
            _ORGAN_LABELS,
            _CC_BY,
            _md5(
                "b9ceb9546e10131b32923c5bbeaea2b1",
                "3ce34a8724ea6f548e6db4744d03b6a9",
                "773c1f009daa3fe5d9a2a201b2a7ed94",
                "050f5e875dc056f6768abf94ec9995d1",
            ),
        ),
        MedMNISTInfo(
            "organsmnist",
            "abdominal CT",
            "multi-class",
            False,
            _ORGAN_LABELS,
            _CC_BY,
            _md5(
                "9ab87b696fb54e2a387ebe992d6ed5f1",
                "53a6d115339d874c25e309a994ff46d3",
                "ded0c5fa01a95dc4978b956f613e9b8e",
                "b354719e553fbbb2513d5533f52a4cb1",
            ),
        ),
    )
}

_SPLITS = {"train": "train", "validation": "val", "val": "val", "test": "test"}
SIZES = (28, 64, 128, 224)


def medmnist_filename(flag: str, size: int) -> str:
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def _info(flag: str) -> MedMNISTInfo:
    try:
        return MEDMNIST_INFO[flag]
    except KeyError:
        raise ValueError(f"unknown MedMNIST dataset {flag!r}; valid: {', '.join(MEDMNIST_INFO)}") from None


def medmnist_path(flag: str, size: int = 224, root: str | Path = ".", download_missing: bool = False) -> Path:
    """Path of ``{flag}[_{size}].npz`` in ``root``, downloading it from Zenodo (MD5-checked) if asked."""
    info = _info(flag)
    if size not in SIZES:
        raise ValueError(f"MedMNIST size must be one of {SIZES}, got {size}")
    path = Path(root) / medmnist_filename(flag, size)
    if download_missing:
        url = URL.format(record=ZENODO_RECORD, filename=path.name)
        download(url, path, info.md5[size])
    elif not path.exists():
        raise ValueError(
            f"{path} not found; download it (hf-robustmed build … --download) or point --source-root at it"
        )
    return path


def load_medmnist(
    flag: str, split: str = "test", *, size: int = 224, root: str | Path = ".", download_missing: bool = False
) -> SourceSplit:
    """One split of a MedMNIST+ dataset, read lazily from its npz file.

    Args:
        flag: Dataset id (``bloodmnist`` …).
        split: ``train``, ``validation`` (MedMNIST's ``val``) or ``test``.
        size: 28, 64, 128 or 224.
        root: Folder holding the npz files.
        download_missing: Fetch the file from Zenodo record 10519652 if absent (checked against MedMNIST's MD5).
    """
    info = _info(flag)
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: train, validation, test")
    path = medmnist_path(flag, size, root, download_missing)
    key = _SPLITS[split]
    images = NpzArray(path, f"{key}_images")
    labels = NpzArray(path, f"{key}_labels").read()
    expected_rgb = info.rgb
    if (len(images.shape) == 4) != expected_rgb:
        raise ValueError(
            f"{path}: {flag} images should be {'RGB' if expected_rgb else 'grey'}, got shape {images.shape}"
        )
    if tuple(images.shape[1:3]) != (size, size):
        raise ValueError(
            f"{path}: a {size}-px MedMNIST file must hold {size}×{size} images, but {key}_images are "
            f"{images.shape[1]}×{images.shape[2]} (a file of another size under this name?)"
        )
    return SourceSplit(
        dataset=flag,
        split="validation" if key == "val" else split,
        images=images,
        labels=labels if info.multilabel else labels.reshape(len(labels)),
        class_names=list(info.labels),
        multilabel=info.multilabel,
        license=info.license,
        citation=CITATION,
        homepage="https://medmnist.com/",
        description=f"MedMNIST+ {flag} ({info.modality}, {info.task}) at {size}×{size}",
    )


def load_medmnist_c_npz(root: str | Path, flag: str, *, clean_root: str | Path, size: int = 224) -> SourceSplit:
    """The published MedMNIST-C release (Zenodo 11471504) of one dataset, as precomputed test images.

    The archive holds ``{flag}/{corruption}.npz`` with ``test_images`` of ``5·N`` rows, severity-major (row
    ``s·N + i`` is severity s+1 of clean test image i), and ``test_labels``. The clean images come from the
    MedMNIST+ file in ``clean_root``; labels are checked against it.
    """
    clean = load_medmnist(flag, "test", size=size, root=clean_root)
    folder = Path(root) / flag
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise ValueError(f"no MedMNIST-C files in {folder} (expected {flag}/<corruption>.npz)")
    n = len(clean)
    for file in files:
        images = NpzArray(file, "test_images")
        if len(images) != 5 * n:
            raise ValueError(f"{file}: {len(images)} images, expected 5 × {n} (five severities of the test split)")
        labels = NpzArray(file, "test_labels").read().reshape(5 * n, -1)
        clean_labels = np.asarray(clean.labels).reshape(n, -1)
        for severity in range(5):
            if not np.array_equal(labels[severity * n : (severity + 1) * n], clean_labels):
                raise ValueError(f"{file}: labels of severity {severity + 1} differ from the clean test labels")
            # One reader per severity: each streams its own block forward.
            clean.precomputed[(file.stem, severity + 1)] = _RowWindow(NpzArray(file, "test_images"), severity * n, n)
    clean.citation = f"{MEDMNIST_C_CITATION}\n{CITATION}"
    clean.description = f"MedMNIST-C {flag} (published release, Zenodo 11471504)"
    return clean


class _RowWindow:
    """Rows ``offset .. offset + length`` of a row-addressable array."""

    def __init__(self, rows, offset: int, length: int):
        self.rows, self.offset, self.length = rows, offset, length
        self.shape = (length, *rows.shape[1:])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.length)
        return self.rows[self.offset + start : self.offset + stop]
