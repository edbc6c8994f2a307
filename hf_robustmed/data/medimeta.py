"""MedIMeta v1.0 sources (Zenodo 7884735 dataset folders) and the published MediMeta-C npz release."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .._optional import require
from ..download import download
from .arrays import NpzArray
from .source import SourceSplit

ZENODO_URL = "https://zenodo.org/records/7884735/files/{id}.zip?download=1"

# The task of each dataset that the paper evaluates (exact MedIMeta v1.0 task names).
MEDIMETA_DATASETS: dict[str, str] = {
    "aml": "morphological class",
    "fundus": "disease presence",
    "mammo_calc": "pathology",
    "mammo_mass": "pathology",
    "oct": "disease class",
    "pbc": "cell class",
    "pneumonia": "disease class",
}
# The class names of those tasks in the data's label order (MedIMeta v1.0 info.yaml), for code that has no dataset
# folder at hand (the Space); loading always reads them from info.yaml.
MEDIMETA_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "aml": (
        "BAS Basophil",
        "EBO Erythroblast",
        "EOS Eosinophil",
        "KSC Smudge cell",
        "LYA Lymphocyte (atypical)",
        "LYT Lymphocyte (typical)",
        "MMZ Metamyelocyte",
        "MOB Monoblast",
        "MON Monocyte",
        "MYB Myelocyte",
        "MYO Myeloblast",
        "NGB Neutrophil (band)",
        "NGS Neutrophil (segmented)",
        "PMB Promyelocyte (bilobled)",
        "PMO Promyelocyte",
    ),
    "fundus": ("normal", "abnormal"),
    "mammo_calc": ("benign", "malignant"),
    "mammo_mass": ("benign", "malignant"),
    "oct": ("CNV", "DME", "DRUSEN", "NORMAL"),
    "pbc": (
        "neutrophil",
        "eosinophil",
        "basophil",
        "lymphocyte",
        "monocyte",
        "immature granulocyte",
        "erythroblast",
        "platelet",
    ),
    "pneumonia": ("NORMAL", "BACTERIA", "VIRUS"),
}
LICENSE = "cc-by-sa-4.0"
CITATION = (
    "@article{woerner2024medimeta, title={A comprehensive and easy-to-use multi-domain multi-task medical imaging "
    "meta-dataset}, author={Woerner, Stefano and Jaques, Arthur and Baumgartner, Christian F}, journal={arXiv "
    "preprint arXiv:2404.16000}, year={2024}}"
)
MEDIMETA_C_CITATION = (
    "@inproceedings{imam2025robustness, title={On the Robustness of Medical Vision-Language Models: Are they Truly "
    "Generalizable?}, author={Imam, Raza and Marew, Rufael and Yaqub, Mohammad}, booktitle={Medical Image "
    "Understanding and Analysis (MIUA)}, year={2025}, doi={10.1007/978-3-031-98688-8_17}}"
)
_SPLIT_FILES = {"train": "train", "validation": "val", "val": "val", "test": "test"}


def _read_yaml(path: Path) -> dict:
    yaml = require("yaml", "data", "reading MedIMeta")
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} not found: is this a MedIMeta dataset folder?") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None


def medimeta_folder(dataset: str, root: str | Path, download_missing: bool = False) -> Path:
    """``root/{dataset}``, downloaded and unzipped from Zenodo 7884735 if asked and absent."""
    if dataset not in MEDIMETA_DATASETS:
        raise ValueError(f"unknown MedIMeta dataset {dataset!r}; the paper's: {', '.join(MEDIMETA_DATASETS)}")
    folder = Path(root) / dataset
    if not (folder / "info.yaml").exists():
        if not download_missing:
            raise ValueError(f"{folder}/info.yaml not found; download it (--download) or point --source-root at it")
        archive = download(ZENODO_URL.format(id=dataset), Path(root) / f"{dataset}.zip")
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(root)
    return folder


def load_medimeta(
    dataset: str,
    split: str = "test",
    *,
    root: str | Path = ".",
    task: str | None = None,
    download_missing: bool = False,
) -> SourceSplit:
    """One split of a MedIMeta dataset folder (``info.yaml``, ``images.hdf5``, ``task_labels/``, ``splits/``).

    Sample indices come from ``splits/{split}.txt`` sorted ascending (the reference loader's order); class names
    come from ``info.yaml`` for the task (the paper's task by default), never from a hard-coded list.
    """
    folder = medimeta_folder(dataset, root, download_missing)
    info = _read_yaml(folder / "info.yaml")
    task_name = task or MEDIMETA_DATASETS[dataset]
    tasks = {t["task_name"]: t for t in info.get("tasks", [])}
    if task_name not in tasks:
        raise ValueError(f"{dataset}: no task {task_name!r} in info.yaml; tasks: {', '.join(tasks)}")
    spec = tasks[task_name]
    labels_by_index = {int(k): str(v) for k, v in spec["labels"].items()}
    if sorted(labels_by_index) != list(range(len(labels_by_index))):
        raise ValueError(f"{dataset}: task {task_name!r} label indices are not 0..{len(labels_by_index) - 1}")
    class_names = [labels_by_index[i] for i in range(len(labels_by_index))]
    multilabel = spec.get("task_target") == "MULTILABEL_CLASSIFICATION"

    if split not in _SPLIT_FILES:
        raise ValueError(f"unknown split {split!r}; valid: train, validation, test")
    split_file = folder / "splits" / f"{_SPLIT_FILES[split]}.txt"
    if not split_file.exists():
        raise ValueError(f"{split_file} not found: {dataset} has no {split} split")
    indices = np.array(sorted(int(Path(line).stem) for line in split_file.read_text().split() if line.strip()))
    all_labels = _load_labels(folder / "task_labels" / f"{task_name}.npy")
    images = _hdf5_images(folder / "images.hdf5")
    total = int(info.get("total_num_samples", len(images)))
    if len(images) != total or len(all_labels) != total:
        raise ValueError(
            f"{dataset}: info.yaml says {total} samples, images.hdf5 has {len(images)}, labels {len(all_labels)}"
        )
    declared = info.get("input_size")
    if declared and tuple(images.shape[1:3]) != tuple(declared[1:3]):
        raise ValueError(
            f"{dataset}: info.yaml declares {declared[1]}×{declared[2]} images, images.hdf5 holds "
            f"{images.shape[1]}×{images.shape[2]}"
        )
    if len(indices) and (indices[0] < 0 or indices[-1] >= total):
        raise ValueError(f"{split_file} lists samples outside 0..{total - 1}")
    return SourceSplit(
        dataset=dataset,
        split="validation" if split == "val" else split,
        images=_IndexedRows(images, indices),
        labels=all_labels[indices],
        class_names=class_names,
        indices=indices,
        multilabel=multilabel,
        license=str(info.get("license", LICENSE)).lower().replace(" ", "-") or LICENSE,
        citation=CITATION,
        homepage="https://github.com/StefanoWoerner/medimeta-pytorch",
        description=f"MedIMeta {info.get('name', dataset)}, task '{task_name}'",
    )


def _load_labels(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"{path} not found") from None
    except (ValueError, OSError) as error:
        raise ValueError(f"cannot read {path} (truncated or corrupt?): {error}") from None


def _hdf5_images(path: Path):
    h5py = require("h5py", "data", "reading MedIMeta")
    try:
        return h5py.File(path, "r")["images"]
    except FileNotFoundError:
        raise ValueError(f"{path} not found") from None
    except (OSError, KeyError) as error:
        raise ValueError(f"cannot read {path} (truncated, corrupt, or no 'images' dataset): {error}") from None


class _IndexedRows:
    """Rows of an HDF5 dataset at given sorted indices, read a slice at a time."""

    def __init__(self, rows, indices: np.ndarray):
        self.rows, self.indices = rows, indices
        self.shape = (len(indices), *rows.shape[1:])

    def __getstate__(self) -> dict:
        """Pickled with the HDF5 file's path, not its open handle (for data-loader workers in other processes)."""
        state = dict(self.__dict__)
        rows = state.pop("rows")
        if hasattr(rows, "file"):  # an h5py dataset
            state["hdf5"] = (rows.file.filename, rows.name)
        else:
            state["rows"] = rows
        return state

    def __setstate__(self, state: dict) -> None:
        hdf5 = state.pop("hdf5", None)
        self.__dict__.update(state)
        if hdf5 is not None:
            h5py = require("h5py", "data", "reading MedIMeta")
            self.rows = h5py.File(hdf5[0], "r")[hdf5[1]]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, rows: slice) -> np.ndarray:
        wanted = self.indices[rows]
        if len(wanted) == 0:
            return np.empty((0, *self.shape[1:]), dtype=np.uint8)
        block = self.rows[int(wanted[0]) : int(wanted[-1]) + 1]  # one contiguous read, then pick
        return np.asarray(block)[wanted - wanted[0]]


def load_medimeta_c_npz(root: str | Path, dataset: str, split: str = "test", *, source_root: str | Path) -> SourceSplit:
    """The authors' MediMeta-C release (``razaimam45/MediMeta-C``) of one dataset split as precomputed images.

    Layout ``{dataset}/{split}/clean.npz`` and ``{corruption}_severity_{k}.npz`` with keys ``images`` and
    ``labels`` (shape ``(N,)`` or ``(N, 1)``). Labels are checked against the MedIMeta source (label order,
    SPEC defect D4), and the clean images must match it in count.
    """
    source = load_medimeta(dataset, split, root=source_root)
    folder = Path(root) / dataset / ("val" if split == "validation" else split)
    clean_file = folder / "clean.npz"
    clean = NpzArray(clean_file, "images")
    labels = NpzArray(clean_file, "labels").read().reshape(-1)
    if len(clean) != len(source) or not np.array_equal(labels, np.asarray(source.labels).reshape(-1)):
        raise ValueError(
            f"{clean_file}: {len(clean)} images whose labels do not match MedIMeta's {split} split of {dataset} "
            "(different sample set or label order)"
        )
    precomputed = {}
    for file in sorted(folder.glob("*_severity_*.npz")):
        name, _, severity = file.stem.rpartition("_severity_")
        images = NpzArray(file, "images")
        if len(images) != len(source):
            raise ValueError(f"{file}: {len(images)} images for {len(source)} clean ones")
        precomputed[(name, int(severity))] = images
    if not precomputed:
        raise ValueError(f"no <corruption>_severity_<k>.npz files in {folder}")
    return SourceSplit(
        dataset=dataset,
        split=source.split,
        images=clean,
        labels=source.labels,
        class_names=source.class_names,
        indices=source.indices,
        multilabel=source.multilabel,
        license=source.license,
        citation=f"{MEDIMETA_C_CITATION}\n{CITATION}",
        homepage="https://huggingface.co/datasets/razaimam45/MediMeta-C",
        description=f"MediMeta-C {dataset} (the authors' release)",
        precomputed=precomputed,
    )
