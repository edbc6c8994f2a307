"""The whole pipeline end to end on embedded data, offline, in minutes: ``hf-robustmed demo`` (``make demo``).

1. **Sources** in their real formats: MedMNIST npz files (``pneumoniamnist.npz``, ``bloodmnist.npz``: generated
   images whose classes differ visibly) and an image folder (``medsamples/{split}/{class}/*.png``: crops of the real
   medical images scikit-image and pydicom ship, one class per imaging modality).
2. **A benchmark** built from them (MedMNIST-C and MediMeta-C corruption suites, clean validation and test splits).
3. **Zero-shot evaluation** of a CLIP baseline and BiomedCLIP, and **mCE** against the baseline.
4. **RobustMedCLIP**: a LoRA adapter trained briefly on the clean validation splits, then evaluated the same way.
5. **The report**: ``report.md`` with its figures, corruption galleries, the adapter's card with its results.

The real CLIP ViT-B/16 and BiomedCLIP are used when their weights are in the local Hugging Face cache (or with
``--models real``, which downloads them); otherwise tiny randomly initialised stand-ins of the same families,
seeded into ``demo_out/hub`` under the real repo ids, go through the same code — and every output says so. The
stand-ins' cache is used (offline) only inside :func:`hub_cache_scope`, around the demo's model work: once
:func:`run_demo` returns, the environment and ``huggingface_hub``'s settings are as they were, so a later
``create_model("biomedclip")`` in the same process gets the real model, never the stand-in.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data.manifest import build_state
from .data.medmnist import MEDMNIST_INFO
from .models.open_clip_family import BIOMEDCLIP_REPO
from .samples import BUNDLED_SAMPLES

CLIP_REPO = "timm/vit_base_patch16_clip_224.openai"
MEDMNIST_DATASETS = {"pneumoniamnist": False, "bloodmnist": True}  # flag → RGB
MEDMNIST_CORRUPTIONS = ("gaussian_noise", "motion_blur", "brightness_down", "jpeg_compression")
MEDIMETA_CORRUPTIONS = ("gaussian_noise", "zoom_blur", "contrast")
SEVERITIES = (1, 3, 5)
SPLITS = {"validation": 48, "test": 32}  # images per split and dataset


# Settings read by the Hub libraries: environment variables, and module attributes some libraries copy at import.
HUB_ENV = ("HF_HUB_OFFLINE", "HF_HUB_CACHE")
HUB_SETTINGS = (
    ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
    ("huggingface_hub.constants", "HF_HUB_CACHE"),
    ("datasets.config", "HF_HUB_OFFLINE"),
    ("datasets.config", "HF_DATASETS_OFFLINE"),
)


@dataclass(frozen=True)
class DemoModels:
    """Names and specs of the demo's models, whether they are stand-ins, and the Hub cache they are seeded in."""

    standins: bool
    baseline: str
    baseline_spec: str
    base: str
    adapted: str
    cache: Path | None = None


@contextlib.contextmanager
def hub_cache_scope(cache: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, the Hugging Face libraries read models from ``cache`` only (offline); on exit the
    environment variables :data:`HUB_ENV` and the module settings :data:`HUB_SETTINGS` are restored, even on error.

    ``cache=None`` changes nothing. The modules of :data:`HUB_SETTINGS` are imported first (when installed), so
    that none copies the temporary settings at its import.
    """
    if cache is None:
        yield
        return
    cache = str(Path(cache).resolve())
    modules = {}
    for name, _ in HUB_SETTINGS:
        with contextlib.suppress(ImportError):
            modules[name] = importlib.import_module(name)
    saved_env = {key: os.environ.get(key) for key in HUB_ENV}
    saved = [
        (modules[m], attr, getattr(modules[m], attr))
        for m, attr in HUB_SETTINGS
        if m in modules and hasattr(modules[m], attr)
    ]
    try:
        os.environ.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=cache)
        for module, attr, _ in saved:
            setattr(module, attr, cache if attr == "HF_HUB_CACHE" else True)
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def real_weights_cached() -> bool:
    """Whether the real BiomedCLIP and OpenAI CLIP weights lie in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    from .models.open_clip_family import WEIGHT_FILES

    def cached(repo: str) -> bool:
        return any(isinstance(try_to_load_from_cache(repo, name), str) for name in WEIGHT_FILES)

    return cached(BIOMEDCLIP_REPO) and cached(CLIP_REPO)


# --- 1. sources -----------------------------------------------------------------------------------------------------
def generated_image(rgb: bool, label: int, classes: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """A textured image whose class shows in its brightness (grey) or its dominant hue (RGB)."""
    texture = rng.normal(0, 20, (size, size, 3)) + 25 * np.sin(np.arange(size) / (2 + label))[None, :, None]
    if rgb:
        hue = np.array([np.cos(2 * np.pi * (label / classes + k / 3)) for k in range(3)])
        base = 128 + 70 * hue[None, None, :]
    else:
        base = np.full(3, 60 + 130 * label / max(classes - 1, 1))[None, None, :]
    image = np.clip(base + texture, 0, 255).astype(np.uint8)
    return image if rgb else image[..., 0]


def write_medmnist_sources(root: Path, seed: int = 0) -> None:
    """``{flag}.npz`` files with MedMNIST's keys (28 px; labels N×1), generated."""
    for flag, rgb in MEDMNIST_DATASETS.items():
        classes = len(MEDMNIST_INFO[flag].labels)
        arrays = {}
        for split, key in (("validation", "val"), ("test", "test"), ("train", "train")):
            n = SPLITS.get(split, classes)
            rng = np.random.default_rng([seed, len(arrays), classes])
            labels = np.arange(n) % classes
            arrays[f"{key}_images"] = np.stack([generated_image(rgb, int(y), classes, rng) for y in labels])
            arrays[f"{key}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
        np.savez_compressed(root / f"{flag}.npz", **arrays)


def write_sample_folder(root: Path, seed: int = 0, size: int = 64) -> Path:
    """``medsamples/{split}/{modality}/*.png``: random crops of the bundled real images, one class per modality."""
    import cv2
    from PIL import Image

    folder = root / "medsamples"
    modalities: dict[str, list[np.ndarray]] = {}
    for sample in BUNDLED_SAMPLES.values():
        pixels = sample.load().pixels
        modalities.setdefault(sample.modality, []).append(pixels if pixels.ndim == 3 else np.stack([pixels] * 3, -1))
    for split, n in SPLITS.items():
        rng = np.random.default_rng([seed, len(split)])
        for c, (modality, images) in enumerate(modalities.items()):
            target = folder / split / modality.replace(" ", "_")
            target.mkdir(parents=True, exist_ok=True)
            for i in range(n // 4):
                image = images[i % len(images)]
                side = int(min(image.shape[:2]) * rng.uniform(0.5, 1.0))
                top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
                crop = cv2.resize(
                    image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA
                )
                Image.fromarray(crop).save(target / f"{i:03d}.png")
    return folder


# --- 2. benchmark ---------------------------------------------------------------------------------------------------
def build_demo_benchmark(sources: Path, out: Path, *, progress: bool = True) -> Path:
    from .data import build_benchmark
    from .data.benchmarks import medmnist_c_jobs
    from .data.builder import BuildJob
    from .data.imagefolder import load_image_dataset

    jobs = medmnist_c_jobs(
        sources,
        datasets=list(MEDMNIST_DATASETS),
        corruptions=list(MEDMNIST_CORRUPTIONS),
        severities=SEVERITIES,
        splits=tuple(SPLITS),
        size=28,
    )
    for split in SPLITS:
        source = load_image_dataset(
            "imagefolder",
            split,
            data_dir=str(sources / "medsamples"),
            dataset_id="medsamples",
            cache_dir=str(sources / ".datasets-cache"),
        )
        source.class_names = [name.replace("_", " ") for name in source.class_names]
        jobs.append(BuildJob(source, "medimeta-c", MEDIMETA_CORRUPTIONS, SEVERITIES))
    build_benchmark(jobs, out, name="Demo-C", shard_rows=256, progress=progress)
    return out


# --- 3–4. models, evaluation, training --------------------------------------------------------------------------
def prepare_models(out: Path, mode: str) -> DemoModels:
    """Real models (``real``, or ``auto`` with cached weights), else stand-ins seeded under the real repo ids into
    ``out/hub`` (used through :func:`hub_cache_scope`; nothing global is changed here)."""
    if mode == "real" or (mode == "auto" and real_weights_cached()):
        return DemoModels(False, "clip-vit-b16", "clip-vit-b16", "biomedclip", "robustmedclip-demo")
    from .testing import save_tiny_open_clip, seed_tiny_biomedclip

    cache = (out / "hub").resolve()
    with hub_cache_scope(cache):  # building the stand-in reads its text config from that cache
        seed_tiny_biomedclip(cache, out / "models")
    clip = save_tiny_open_clip(out / "models" / "clip-standin")
    return DemoModels(
        True, "clip-standin", f"local-dir:{clip.resolve()}", "biomedclip-standin", "robustmedclip-standin", cache=cache
    )


def train_config(bench: Path, adapter: Path, models: DemoModels):
    from .adaptation import TrainConfig

    datasets = [*MEDMNIST_DATASETS, "medsamples"]
    if models.standins:  # a tiny random model needs a larger step and its own prompt to learn in seconds
        return TrainConfig(
            benchmarks=[str(bench)],
            datasets=datasets,
            output_dir=str(adapter),
            fraction=0.5,
            rank=4,
            epochs=15,
            batch_size=16,
            lr=1e-3,
            eval_template="a medical image of {c} belonging to {d}",
            eval_batch_size=64,
        )
    return TrainConfig(
        benchmarks=[str(bench)],
        datasets=datasets,
        output_dir=str(adapter),
        fraction=0.5,
        rank=16,
        epochs=3,
        batch_size=16,
        eval_batch_size=32,
    )


def run_demo(out: str | Path = "demo_out", *, models: str = "auto", progress: bool = True) -> Path:
    """Runs the pipeline into ``out``; returns the path of ``report.md``. Reruns reuse what is finished."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started, say = time.perf_counter(), (print if progress else (lambda *a, **k: None))
    chosen = prepare_models(out, models)
    if chosen.standins:
        say(
            "NOTE: the real CLIP and BiomedCLIP weights are not in the local Hugging Face cache, so this demo uses "
            "tiny randomly initialised STAND-INS of the same families (their numbers mean nothing). Run "
            f"`hf download {BIOMEDCLIP_REPO}` and `hf download "
            "timm/vit_base_patch16_clip_224.openai`, or `hf-robustmed demo --models real`, for the real models."
        )
    sources, bench, adapter = out / "sources", out / "benchmark", out / "robustmedclip"
    if build_state(bench) != "complete":
        say("[1/5] writing sources (MedMNIST npz, image folder of bundled medical images)")
        sources.mkdir(parents=True, exist_ok=True)
        write_medmnist_sources(sources)
        write_sample_folder(sources)
        say("[2/5] building the benchmark")
        build_demo_benchmark(sources, bench, progress=progress)
    from .adaptation.train import train
    from .evaluation import evaluate
    from .models import create_model

    config = train_config(bench, adapter, chosen)
    with hub_cache_scope(chosen.cache):  # the stand-ins' cache, for the model work only
        say("[3/5] training the RobustMedCLIP adapter")
        train(config, progress=progress)
        say("[4/5] zero-shot evaluation of the baseline, the base model and the adapted model")
        zoo = [
            replace(create_model(chosen.baseline_spec), name=chosen.baseline),
            replace(create_model("biomedclip"), name=chosen.base),
            replace(create_model(f"peft:{adapter}"), name=chosen.adapted),
        ]
        results = evaluate(zoo, str(bench), out / "evaluation", templates=(config.eval_template,), batch_size=64)
        say("[5/5] report")
        from .adaptation.card import update_adapter_card

        update_adapter_card(adapter, results=results, results_model=chosen.adapted)  # checks the base's files
    from .report import write_report

    write_galleries(out)
    report = write_report(
        results,
        out,
        reference=chosen.baseline,
        collections={"MedMNIST-C": list(MEDMNIST_DATASETS), "MediMeta-C suite": ["medsamples"]},
    )
    _prepend_note(report, chosen, time.perf_counter() - started)
    say(f"done in {time.perf_counter() - started:.0f} s: {report}")
    return report


def write_galleries(out: Path) -> None:
    """The paper's Figure 1 for the bundled fundus photograph (MediMeta-C) and a phantom (MedMNIST-C)."""
    import cv2

    from .figures import corruption_gallery
    from .files import write_image
    from .samples import shepp_logan

    retina = cv2.resize(BUNDLED_SAMPLES["retina"].load().pixels, (224, 224), interpolation=cv2.INTER_AREA)
    for name, image, suite in (
        ("gallery_medimeta_c.png", retina, "medimeta-c"),
        ("gallery_pneumoniamnist.png", shepp_logan(224), "medmnist-c/pneumoniamnist"),
    ):
        write_image(corruption_gallery(image, suite=suite, title=suite), out / name)


def _prepend_note(report: Path, models: DemoModels, seconds: float) -> None:
    kind = (
        "**Stand-in weights**: tiny randomly initialised models of the CLIP and BiomedCLIP families were used "
        "because the real weights are not in the local Hugging Face cache; these numbers show that the pipeline "
        "works, not how the real models behave."
        if models.standins
        else "Real weights: OpenAI CLIP ViT-B/16 and BiomedCLIP from the Hugging Face Hub."
    )
    note = (
        f"> **hf-robustmed demo.** {kind}\n>\n"
        "> Data: generated MedMNIST-format images (pneumoniamnist, bloodmnist) and "
        f"crops of the real medical images bundled by scikit-image and pydicom (medsamples, one class per "
        f"modality), corrupted with the MedMNIST-C and MediMeta-C suites at severities "
        f"{', '.join(map(str, SEVERITIES))}. The adapter was trained for a few epochs on half of each clean "
        f"validation split. Whole pipeline: {seconds:.0f} s.\n>\n"
        "> The corruptions, on the bundled fundus photograph (MediMeta-C suite) and a phantom (MedMNIST-C "
        "pneumoniamnist suite):\n>\n> ![MediMeta-C corruptions](gallery_medimeta_c.png)\n>\n"
        "> ![MedMNIST-C corruptions](gallery_pneumoniamnist.png)\n\n"
    )
    report.write_text(note + report.read_text())
