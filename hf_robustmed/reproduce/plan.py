"""The plan of a study before anything is fetched: downloads and their sizes, disk, image-evaluations per model,
training steps, and a time estimate from a quick measurement on the present hardware.

Sizes are data (:data:`SOURCE_SIZES`, :data:`WEIGHT_SIZES`), each with where it comes from. Times are never
constants: :func:`measure` runs a few batches through randomly initialised image towers of the study's
architectures (open_clip ViT-B/16, timm ViT-B/16, MedCLIP's Swin-Tiny), a few LoRA training steps, the corruption
engine on a few images of every (dataset, corruption) pair and the PNG encoder, on this machine.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..corruptions import get_suite
from .study import BASE_MODEL, ORIGINAL_REPO, OVERRIDE, Collection, Study, StudyModel

GB = 1e9
PIXELS = 224 * 224

# Split sizes (train, validation, test) and channels of the paper's 12 datasets: SPEC §1.2 (MedIMeta v1.0
# info.yaml) and §1.3 (MedMNIST v3 INFO). Used when a source is not on disk yet; otherwise the files are counted.
SPLITS: Mapping[str, tuple[int, int, int, int]] = MappingProxyType(
    {
        "aml": (12855, 1836, 3674, 3),
        "fundus": (1920, 640, 640, 3),
        "mammo_calc": (1332, 214, 326, 1),
        "mammo_mass": (1126, 192, 378, 1),
        "pneumonia": (4415, 817, 624, 1),
        "oct": (91615, 16694, 1000, 1),
        "pbc": (11964, 1709, 3419, 3),
        "bloodmnist": (11959, 1712, 3421, 3),
        "breastmnist": (546, 78, 156, 1),
        "octmnist": (97477, 10832, 1000, 1),
        "pneumoniamnist": (4708, 524, 624, 1),
        "retinamnist": (1080, 120, 400, 3),
    }
)
SPLIT_INDEX = {"train": 0, "validation": 1, "test": 2}


def raw_bytes(dataset: str) -> int:
    """Bytes of a dataset's uint8 pixels over its three splits at 224 px (SPEC §1.2/§1.3 counts)."""
    train, val, test, channels = SPLITS[dataset]
    return (train + val + test) * PIXELS * channels


@dataclass(frozen=True)
class Size:
    """An approximate size in bytes and where the number comes from."""

    bytes: float
    source: str


# Download sizes of the clean sources. APPROXIMATE: SPEC lists no file sizes, and none could be measured here (no
# network on the development machine); the download progress bars show the true ones.
# * MedMNIST+ ``{flag}_224.npz`` (Zenodo 10519652): the byte sizes a third-party project pins, together with the same
#   MD5s as MedMNIST's INFO, in its verified-download code (found in a public-code index; not checked here). They
#   are below the raw pixel bytes of the three splits (SPEC §1.3 counts), as a deflated npz must be.
# * MedIMeta ``{id}.zip`` (Zenodo 7884735): no published size was found. An upper bound from SPEC §1.2/§1.4: the
#   zip holds ``images.hdf5`` and one uncompressed TIFF per image, about twice the raw pixels before deflate.
MEDMNIST_224_BYTES = {
    "bloodmnist": 1_540_731_655,
    "breastmnist": 30_903_564,
    "octmnist": 3_959_197_818,
    "pneumoniamnist": 214_384_716,
    "retinamnist": 127_992_567,
}
SOURCE_SIZES: Mapping[str, Size] = MappingProxyType(
    {
        **{
            d: Size(size, "≈ Zenodo 10519652 file size pinned by a third-party verified download (not checked here)")
            for d, size in MEDMNIST_224_BYTES.items()
        },
        **{
            d: Size(2 * raw_bytes(d), "≤ 2 × raw pixels (images.hdf5 + TIFFs, SPEC §1.4); deflate makes it smaller")
            for d in ("aml", "fundus", "mammo_calc", "mammo_mass", "oct", "pbc", "pneumonia")
        },
    }
)
UNZIPPED_FACTOR = {"medimeta": 2.0, "medmnist": 0.0}  # extra disk after extraction, × raw pixels (zip kept)

# Weight downloads. APPROXIMATE: fp32 parameter counts × 4 bytes of the architectures in SPEC §4 (ViT-B/16 image
# tower 86 M parameters; CLIP text transformer 63 M; BiomedBERT / Bio_ClinicalBERT base 110 M; Swin-Tiny 28 M).
WEIGHT_SIZES: Mapping[str, tuple[str, Size]] = MappingProxyType(
    {
        "clip-vit-b16": ("Hub timm/vit_base_patch16_clip_224.openai", Size(0.60 * GB, "≈ 150 M fp32 parameters")),
        "biomedclip": (
            "Hub microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
            Size(0.78 * GB, "≈ 196 M fp32 parameters"),
        ),
        "unimedclip": (
            "Hub razaimam45/RobustMedCLIP checkpoints/unimedclip/unimed_clip_vit_b16.pt",
            Size(
                2.4 * GB,
                "≈ 196 M fp32 parameters, × 3 if the file holds the optimiser state as the fork's checkpoints do",
            ),
        ),
        "medclip-vit": (
            "storage.googleapis.com/pytrial/medclip-vit-pretrained.zip",
            Size(0.55 * GB, "≈ 137 M fp32 parameters"),
        ),
    }
)
ORIGINAL_SIZE = Size(0.79 * GB, "≈ BiomedCLIP's 196 M fp32 parameters + LoRA (full state dict, SPEC §7.1)")
CELL_ROW_BYTES = 64  # one stored prediction: index, label, pred and a few float32 probabilities, Parquet-encoded


def lora_bytes(rank: int) -> int:
    """fp32 bytes of a PEFT LoRA of rank r on BiomedCLIP's 12 fused qkv layers (768 → 2304): 36,864 · r
    parameters, 589,824 at r = 16 (SPEC §7.5)."""
    return 12 * (768 + 2304) * rank * 4


# --- what the study holds ---------------------------------------------------------------------------------------
def source_path(study: Study, collection: Collection, dataset: str) -> Path:
    """Where a dataset's clean source lies (file or folder) under the study's source root."""
    root = study.sources / collection.folder
    return root / f"{dataset}_224.npz" if collection.folder == "medmnist" else root / dataset


def _present(study: Study, collection: Collection, dataset: str) -> bool:
    path = source_path(study, collection, dataset)
    return path.is_file() if collection.folder == "medmnist" else (path / "info.yaml").is_file()


def load_split(study: Study, collection: Collection, dataset: str, split: str, download: bool = False):
    """A dataset's clean split, read from the study's source root (fetched first with ``download``)."""
    from ..data.medimeta import load_medimeta
    from ..data.medmnist import load_medmnist

    root = study.sources / collection.folder
    if collection.folder == "medmnist":
        return load_medmnist(dataset, split, size=224, root=root, download_missing=download)
    return load_medimeta(dataset, split, root=root, download_missing=download)


def split_size(study: Study, collection: Collection, dataset: str, split: str) -> int:
    """Rows of a split: counted from the source when it is on disk, else SPEC's count."""
    if _present(study, collection, dataset):
        return len(load_split(study, collection, dataset, split))
    return SPLITS[dataset][SPLIT_INDEX[split]]


def corruptions_of(study: Study, collection: Collection, dataset: str) -> list[str]:
    """The corruptions of a dataset in the study: its suite's set, restricted to the requested names."""
    names = get_suite(suite_of(collection, dataset)).corruptions
    return [c for c in names if study.corruptions is None or c in study.corruptions]


def suite_of(collection: Collection, dataset: str) -> str:
    """The corruption suite of a dataset (MedMNIST-C: its own registry entry; MediMeta-C: one suite)."""
    return f"medmnist-c/{dataset}" if collection.benchmark == "medmnist-c" else "medimeta-c"


@dataclass
class Counts:
    """Image counts of a study, per collection and per RobustMedCLIP run."""

    test: dict[str, dict[str, int]] = field(default_factory=dict)  # collection → dataset → test rows
    validation: dict[str, int] = field(default_factory=dict)  # dataset → validation rows
    corruptions: dict[str, list[str]] = field(default_factory=dict)  # dataset → corruptions

    def evaluations(self, study: Study, collection: str) -> int:
        """Image-evaluations of one model under one protocol on one collection (clean + corrupted)."""
        return sum(n * (1 + len(self.corruptions[d]) * len(study.severities)) for d, n in self.test[collection].items())

    def train_images(self, fraction: int) -> int:
        """Few-shot rows of a run (≈: ``floor(f · n)`` per dataset, SPEC §7.2; our sampler rounds up per class)."""
        return sum(math.floor(fraction / 100 * n) for n in self.validation.values())

    def selection_images(self, fraction: int, cap: int = 512) -> int:
        """Validation rows left for model selection per epoch (capped per dataset, as the trainer does)."""
        return sum(min(cap, n - math.floor(fraction / 100 * n)) for n in self.validation.values())


def count(study: Study) -> Counts:
    """The study's image counts (from the sources on disk where they are, SPEC's counts otherwise)."""
    counts = Counts()
    for collection, datasets in study.collections():
        counts.test[collection.name] = {d: split_size(study, collection, d, "test") for d in datasets}
        for d in datasets:
            counts.corruptions[d] = corruptions_of(study, collection, d)
            if not counts.corruptions[d]:
                raise ValueError(
                    f"none of the requested corruptions belongs to {d}'s set "
                    f"({', '.join(get_suite(suite_of(collection, d)).corruptions)})"
                )
            if study.train:
                counts.validation[d] = split_size(study, collection, d, "validation")
    return counts


# --- downloads and disk -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Download:
    """One thing to fetch (or found present)."""

    what: str
    where: str
    size: Size
    present: bool
    checksum: str


def downloads(study: Study) -> list[Download]:
    """Everything the study fetches, each with its size and whether it is already here."""
    items = []
    for collection, datasets in study.collections():
        for d in datasets:
            present = _present(study, collection, d)
            where = (
                f"zenodo.org/records/10519652 {d}_224.npz"
                if collection.folder == "medmnist"
                else f"zenodo.org/records/7884735 {d}.zip"
            )
            checksum = "MD5 (MedMNIST INFO)" if collection.folder == "medmnist" else "none known here (not verified)"
            size = Size(_disk_size(source_path(study, collection, d)), "on disk") if present else SOURCE_SIZES[d]
            items.append(Download(f"source {d}", where, size, present, checksum))
    for name in study.baselines:
        if name in study.overrides:
            items.append(Download(f"weights {name}", f"override {study.overrides[name]}", Size(0, "local"), True, "-"))
            continue
        where, size = WEIGHT_SIZES[name]
        items.append(
            Download(
                f"weights {name}",
                where,
                size,
                _weights_cached(name),
                "Hub etag / SHA-256" if where.startswith("Hub") else "none known here (not verified)",
            )
        )
    if study.train and BASE_MODEL not in study.baselines and BASE_MODEL not in study.overrides:
        where, size = WEIGHT_SIZES[BASE_MODEL]
        items.append(Download(f"weights {BASE_MODEL}", where, size, _weights_cached(BASE_MODEL), "Hub etag / SHA-256"))
    for run in study.runs if study.originals else ():
        items.append(
            Download(
                f"checkpoint {run.original_name}",
                f"Hub {ORIGINAL_REPO} {run.original_file}",
                ORIGINAL_SIZE,
                _original_cached(run.original_file),
                "Hub etag / SHA-256",
            )
        )
    return items


def _disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _weights_cached(name: str) -> bool:
    """Whether a registry model's weights are already local (nothing is downloaded to find out)."""
    from huggingface_hub import try_to_load_from_cache

    from ..models.medclip import DEFAULT_FOLDERS, WEIGHTS_NAMES
    from ..models.open_clip_family import WEIGHT_FILES
    from ..models.unimedclip import HUB_FILE, HUB_REPO

    if name == "medclip-vit":
        folder = Path(os.path.expanduser(DEFAULT_FOLDERS["vit"]))
        return any((folder / f).is_file() for f in WEIGHTS_NAMES)
    if name == "unimedclip":
        return isinstance(try_to_load_from_cache(HUB_REPO, HUB_FILE), str)
    repo = WEIGHT_SIZES[name][0].split()[1]
    return any(isinstance(try_to_load_from_cache(repo, f), str) for f in WEIGHT_FILES)


def _original_cached(filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(ORIGINAL_REPO, filename), str)


def disk_needed(study: Study, counts: Counts, items: list[Download]) -> dict[str, float]:
    """Bytes the study adds: in the output and source folders, and in the Hugging Face cache."""
    fetch = [i for i in items if not i.present]
    sources = sum(i.size.bytes for i in fetch if i.what.startswith("source"))
    unzipped = sum(
        UNZIPPED_FACTOR[c.folder] * raw_bytes(d)
        for c, ds in study.collections()
        for d in ds
        if not _present(study, c, d)
    )
    train_data = sum(n * PIXELS * SPLITS[d][3] for d, n in counts.validation.items())  # PNG ≤ raw pixels
    # a trained adapter, its last checkpoint (adapter, best adapter, AdamW's two moments); a converted one of rank 3r
    adapters = sum(5 * study.train * lora_bytes(r.rank) + study.originals * lora_bytes(3 * r.rank) for r in study.runs)
    cells = (
        sum(counts.evaluations(study, c) for c in counts.test)
        * CELL_ROW_BYTES
        * len(study.protocols)
        * (len(study.baselines) + len(study.runs) * (study.train + study.originals))
    )
    cache = sum(i.size.bytes for i in fetch if not i.what.startswith("source"))
    return {
        "sources": sources + unzipped,
        "training benchmarks": train_data,
        "adapters": adapters,
        "evaluation cells": cells,
        "Hugging Face cache": cache,
    }


# --- measurement ----------------------------------------------------------------------------------------------------
def _open_clip_vit():
    import open_clip

    return open_clip.create_model("ViT-B-16-quickgelu", pretrained=None).visual


def _timm_vit():
    import timm

    return timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=512)  # + BiomedCLIP's proj


def _swin_tiny():
    from transformers import SwinConfig

    from ..models.medclip import SWIN_TINY_CONFIG, MedCLIPVisionSwin

    return MedCLIPVisionSwin(SwinConfig(**SWIN_TINY_CONFIG))


# Image towers of the study's models, randomly initialised (timing only; SPEC §4).
ARCHITECTURES: Mapping[str, tuple[str, Callable]] = MappingProxyType(
    {
        "vit-b16-openai": ("open_clip ViT-B/16 (CLIP, UniMed-CLIP)", _open_clip_vit),
        "vit-b16-timm": ("timm ViT-B/16 (BiomedCLIP, RobustMedCLIP)", _timm_vit),
        "swin-tiny": ("Swin-Tiny (MedCLIP)", _swin_tiny),
    }
)


@dataclass
class Rates:
    """Measured throughputs on this machine."""

    device: str
    batch: int
    encode: dict[str, float]  # architecture → images/s (inference)
    train: float  # images/s, LoRA training step of the ViT-B/16 tower
    corrupt: dict[tuple[str, str], float]  # (dataset, corruption) → seconds per image, one core
    png: float  # seconds per encoded 224-px image
    workers: int
    seconds: float  # how long measuring took


def _timed(fn: Callable[[], object], repeats: int) -> float:
    """Seconds of one call: the fastest of ``repeats`` after a warm-up (other jobs on the machine only add time)."""
    fn()  # warm-up
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _quiet(factory: Callable):
    """Builds a random tower without open_clip's "no pretrained weights" warning (random is the point here)."""
    import logging

    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return factory()
    finally:
        logger.setLevel(level)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def encoder_step(study: Study, architecture: str, device: str, batch: int) -> Callable[[], object]:
    """One inference batch of an image tower: a random tower of a registry architecture on 224-px float pixels, or
    an overridden model as loaded (its own preprocessing of uint8 224-px images, then its encoder)."""
    import torch

    if architecture.startswith(OVERRIDE):
        from ..models import create_model

        model = create_model(study.spec(architecture[len(OVERRIDE) :]), device=device)
        images = torch.randint(0, 256, (batch, 3, 224, 224), dtype=torch.uint8, device=device)
        return lambda: model.encode_images(model.preprocess_batch(images))
    module = _quiet(ARCHITECTURES[architecture][1]).to(device).eval()
    pixels = torch.randn(batch, 3, 224, 224, device=device)
    return lambda: module(pixels)


def measure_encoder(study: Study, architecture: str, device: str, batch: int, batches: int) -> float:
    """Images per second of an image tower on ``device`` (see :func:`encoder_step`)."""
    import torch

    forward = encoder_step(study, architecture, device, batch)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(study.mixed_precision)

    def step():
        with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            forward()
        _sync(device)

    return batch / _timed(step, batches)


def _training_model(study: Study, device: str, rank: int):
    """(LoRA model, its image forward, pixels) of RobustMedCLIP's base: BiomedCLIP's timm ViT-B/16 tower, random,
    or the overridden base as loaded (LoRA on its qkv, as the trainer puts it)."""
    import torch

    if BASE_MODEL in study.overrides:
        from ..adaptation.config import QKV_TARGET
        from ..adaptation.lora import add_lora
        from ..models import create_model
        from ..models.peft_family import base_model_id

        base = create_model(study.spec(BASE_MODEL), device=device)
        model = add_lora(
            base.module,
            base_model_id(study.spec(BASE_MODEL)),
            rank=rank,
            alpha=rank,
            dropout=0.0,
            target_modules=QKV_TARGET,
        )
        images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8, device=device)
        return model, model.encode_image, base.preprocess_batch(images)
    import peft

    config = peft.LoraConfig(r=rank, lora_alpha=rank, target_modules=r"blocks\.\d+\.attn\.qkv")
    model = peft.get_peft_model(_timm_vit().to(device), config)
    return model, model, None


def measure_training(study: Study, device: str, batch: int, batches: int, rank: int) -> float:
    """Images per second of a LoRA training step (forward, backward, AdamW) of RobustMedCLIP's base image tower."""
    import torch

    model, forward, pixels = _training_model(study, device, rank)
    pixels = torch.randn(batch, 3, 224, 224, device=device) if pixels is None else pixels[:1].repeat(batch, 1, 1, 1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        loss = forward(pixels).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        _sync(device)

    return batch / _timed(step, batches)


def _test_image(channels: int, seed: int = 0) -> np.ndarray:
    """A smooth random 224-px image with edges and texture (corruption timing depends little on content)."""
    import cv2

    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.uniform(0, 255, (224, 224, 3)).astype(np.float32), (0, 0), 6)
    image = np.clip((image - image.mean()) * 4 + 128 + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    return image if channels == 3 else image[..., 0]


def measure_corruptions(study: Study, images: int = 2) -> dict[tuple[str, str], float]:
    """Seconds per image (one core) of every (dataset, corruption) of the study, at severity 3."""
    from ..corruptions import corrupt

    rates = {}
    for collection, datasets in study.collections():
        for d in datasets:
            rgb = collection.benchmark == "medimeta-c" or SPLITS[d][3] == 3  # MediMeta-C corrupts in RGB
            samples = [_test_image(3 if rgb else 1, seed) for seed in range(images)]
            for name in corruptions_of(study, collection, d):
                corrupt(samples[0], name, 3, suite=suite_of(collection, d), seed=0, key=0)  # warm-up (caches)
                started = time.perf_counter()
                for key, image in enumerate(samples):
                    corrupt(image, name, 3, suite=suite_of(collection, d), seed=0, key=key)
                rates[(d, name)] = (time.perf_counter() - started) / images
    return rates


def measure(study: Study, *, batches: int = 2, device: str | None = None) -> Rates:
    """Measures this machine's throughputs for the study (a few batches per architecture; seconds on a GPU)."""
    import torch

    from ..data.loader import default_num_workers
    from ..data.png import encode_png

    started = time.perf_counter()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    batch = study.batch_size if device.startswith("cuda") else 2
    architectures = dict.fromkeys(m.architecture for m in study.models(study.runs if study.originals else ()))
    encode = {a: measure_encoder(study, a, device, batch, batches) for a in architectures}
    train_batch = min(study.train_batch_size, 32) if device.startswith("cuda") else 2
    rank = max((run.rank for run in study.runs), default=16)
    train = measure_training(study, device, train_batch, batches, rank) if study.train and study.runs else 0.0
    image = _test_image(3)
    png = _timed(lambda: encode_png(image), 5)
    return Rates(
        device,
        batch,
        encode,
        train,
        measure_corruptions(study),
        png,
        default_num_workers(1),
        time.perf_counter() - started,
    )


# --- time estimate ------------------------------------------------------------------------------------------------
def evaluation_seconds(study: Study, counts: Counts, rates: Rates, model: StudyModel) -> float:
    """One model under every protocol: the slower of encoding and making the corruptions (pipelined)."""
    total = 0.0
    for collection, datasets in study.collections():
        images = counts.evaluations(study, collection.name)
        encode = images / rates.encode[model.architecture]
        corrupt = sum(
            counts.test[collection.name][d]
            * len(study.severities)
            * sum(rates.corrupt[(d, c)] for c in counts.corruptions[d])
            for d in datasets
        )
        total += max(encode, corrupt / max(1, rates.workers))
    return total * len(study.protocols)


def training_seconds(study: Study, counts: Counts, rates: Rates, fraction: int) -> float:
    """One RobustMedCLIP run: training steps plus the per-epoch model selection."""
    train = counts.train_images(fraction) * study.epochs / rates.train
    select_rate = rates.encode.get(study.architecture(BASE_MODEL), rates.train)
    select = counts.selection_images(fraction) * (study.epochs + 1) / select_rate
    return train + (select if fraction < 100 else 0.0)


def steps_per_epoch(counts: Counts, fraction: int, batch: int) -> int:
    return math.ceil(counts.train_images(fraction) / batch)


# --- the printed plan -----------------------------------------------------------------------------------------------
def _gb(value: float) -> str:
    return f"{value / GB:,.2f} GB" if value >= 0.01 * GB else f"{value / 1e6:,.1f} MB"


def duration(seconds: float) -> str:
    """A duration in words: seconds, minutes, hours or days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(study: Study, counts: Counts, items: list[Download], rates: Rates | None) -> str:
    """The plan as text (what ``hf-robustmed reproduce --dry-run`` prints)."""
    collections = ", ".join(f"{c.name}: {len(d)}" for c, d in study.collections())
    lines = [
        (
            f"Study: {len(study.datasets)} datasets ({collections}), "
            f"severities {','.join(map(str, study.severities))}, protocols {', '.join(study.protocols)}; "
            f"output {study.out}; sources {study.sources} "
            f"({'missing ones are downloaded' if study.download else 'used as they are, nothing downloaded'})"
        ),
        "",
    ]
    lines += _downloads_section(study, items) + [""] + _disk_section(study, counts, items) + [""]
    lines += _evaluations_section(study, counts) + [""] + _training_section(study, counts) + [""]
    if rates is not None:
        lines += _time_section(study, counts, rates)
    return "\n".join(lines)


def _downloads_section(study: Study, items: list[Download]) -> list[str]:
    lines = ["Downloads (sizes approximate unless present; sources of the numbers in hf_robustmed/reproduce/plan.py):"]
    width = max(len(i.what) for i in items)
    for i in items:
        state = "present" if i.present else "fetch"
        bound = "" if i.present else "≤ " if i.size.source.startswith("≤") else "≈ "
        lines.append(
            f"  {i.what:<{width}}  {state:<7} {bound + _gb(i.size.bytes):>12}  {i.where}  [checksum: {i.checksum}]"
        )
    todo = [i for i in items if not i.present]
    missing = [i.what.split()[-1] for i in todo if i.what.startswith("source")]
    if missing and not study.download:
        lines.append(
            f"  WARNING: with --no-download the run will stop: no source of {', '.join(missing)} in {study.sources}"
        )
    lines.append(
        f"  to fetch: {len(todo)} item(s), at most about {_gb(sum(i.size.bytes for i in todo))} "
        "(≤: an upper bound from the raw pixel bytes; ≈: a third party's file size, or parameter counts)"
    )
    return lines


def _disk_section(study: Study, counts: Counts, items: list[Download]) -> list[str]:
    disk = disk_needed(study, counts, items)
    parts = ", ".join(f"{name} {_gb(value)}" for name, value in disk.items())
    return [
        (
            f"Disk needed: at most about {_gb(sum(disk.values()))} ({parts}). Corrupted images are made on the "
            "fly: none is stored."
        )
    ]


def _evaluations_section(study: Study, counts: Counts) -> list[str]:
    models = study.models(study.runs if study.originals else ())
    lines = ["Image-evaluations (test splits, clean + every corruption × severity, made on the fly):"]
    per_model = 0
    for collection, datasets in study.collections():
        n = counts.evaluations(study, collection.name)
        per_model += n
        pairs = sum(len(counts.corruptions[d]) for d in datasets)
        lines.append(
            f"  {collection.name}: {len(datasets)} datasets, {sum(counts.test[collection.name].values()):,} "
            f"test images, {pairs} (dataset, corruption) pairs → {n:,} per model and protocol"
        )
    per_model *= len(study.protocols)
    lines.append(
        f"  per model: {per_model:,} ({len(study.protocols)} protocol(s)); {len(models)} models "
        f"({', '.join(m.name for m in models)}) → {per_model * len(models):,} in all"
    )
    return lines


def _training_section(study: Study, counts: Counts) -> list[str]:
    if not study.train or not study.runs:
        return ["RobustMedCLIP training: none (--no-train)"]
    lines = [
        (
            f"RobustMedCLIP training (BiomedCLIP + PEFT LoRA on attn.qkv, batch {study.train_batch_size}, "
            f"{study.epochs} epochs, seed {study.train_seed}; clean validation splits):"
        )
    ]
    for run in study.runs:
        steps = steps_per_epoch(counts, run.fraction, study.train_batch_size)
        lines.append(
            f"  {run.trained_name}: ≈ {counts.train_images(run.fraction):,} images, {steps} steps/epoch, "
            f"{steps * study.epochs:,} steps"
        )
    if study.originals:
        lines.append(
            "  plus the authors' checkpoints of the same (rank, fraction), converted to PEFT where they can be fetched"
        )
    return lines


def _time_section(study: Study, counts: Counts, rates: Rates) -> list[str]:
    models = study.models(study.runs if study.originals else ())
    lines = [
        (
            f"Measured on this machine ({rates.device}, {os.cpu_count()} CPU cores, {rates.workers} loader workers; "
            f"random weights, batch {rates.batch}, {rates.seconds:.0f} s of measuring):"
        )
    ]
    for key, rate in rates.encode.items():
        what = (
            f"{key[len(OVERRIDE) :]} as given by --models (its own architecture)"
            if key.startswith(OVERRIDE)
            else ARCHITECTURES[key][0]
        )
        lines.append(f"  {what}: {rate:,.1f} images/s")
    if rates.train:
        base = "the given base" if BASE_MODEL in study.overrides else "timm ViT-B/16"
        lines.append(f"  LoRA training step ({base}): {rates.train:,.1f} images/s")
    mean = np.mean(list(rates.corrupt.values()))
    slowest = max(rates.corrupt, key=rates.corrupt.get)
    lines.append(
        f"  corruption engine: {1000 * mean:.1f} ms/image on one core (mean over pairs; slowest "
        f"{slowest[1]} on {slowest[0]}: {1000 * rates.corrupt[slowest]:.0f} ms)"
    )
    evaluation = {m.name: evaluation_seconds(study, counts, rates, m) for m in models}
    training = {
        r.trained_name: training_seconds(study, counts, rates, r.fraction) for r in (study.runs if study.train else ())
    }
    build = sum(counts.validation.values()) * rates.png
    lines.append("Estimated time on this hardware (downloads not included):")
    for name, seconds in {**evaluation, **training}.items():
        lines.append(f"  {name}: {duration(seconds)}")
    lines.append(f"  building the clean training benchmarks: {duration(build)}")
    lines.append(f"  total: ≈ {duration(sum(evaluation.values()) + sum(training.values()) + build)}")
    return lines
