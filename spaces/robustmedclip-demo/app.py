"""RobustMedCLIP demo Space: how a medical vision-language model's zero-shot prediction survives image corruptions.

Tab "Try an image": upload an image (PNG, JPEG, TIFF, 16-bit, DICOM, ...) or pick a bundled sample, choose a
dataset (its class names and its corruption suite), a corruption and a severity; see the clean and corrupted image
side by side, the zero-shot class probabilities of the base and the adapted model on both, and how the probability
of each model's clean prediction falls over severities 1–5. Tab "Leaderboard": mCE table and charts of an
evaluation results file written by ``hf-robustmed evaluate``.

Configuration (environment variables, read when first needed):

* ``HF_ROBUSTMED_BASE_MODEL`` — the base model, a registry name or spec of ``hf_robustmed.models.create_model``
  (default ``biomedclip``);
* ``HF_ROBUSTMED_ADAPTED_MODEL`` — the adapted model (default ``robustmedclip``; e.g. ``peft:path/to/adapter``);
* ``HF_ROBUSTMED_RESULTS`` — the long-format results file (``.parquet`` or ``.csv``) of the leaderboard (default
  ``results/results.parquet`` beside this file);
* ``HF_ROBUSTMED_DEVICE`` — ``cpu`` or ``cuda`` (default: ``cuda`` when available).

Run locally: ``python spaces/robustmedclip-demo/app.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from hf_robustmed.corruptions import corrupt, format_param, get_suite, list_corruptions, list_suites
from hf_robustmed.data.medimeta import MEDIMETA_CLASS_NAMES, MEDIMETA_DATASETS
from hf_robustmed.data.medmnist import MEDMNIST_INFO
from hf_robustmed.medical_images import ImageReadError, MedicalImage, read_medical_image
from hf_robustmed.samples import BUNDLED_SAMPLES, BundledSample

if TYPE_CHECKING:
    from hf_robustmed.models import ZeroShotModel

HERE = Path(__file__).resolve().parent
DEFAULT_BASE_MODEL = "biomedclip"
DEFAULT_ADAPTED_MODEL = "robustmedclip"
DEFAULT_RESULTS = HERE / "results" / "results.parquet"
DEFAULT_REFERENCE = "clip-vit-b16"

# The upload limits, stated once (in the upload box's label) and enforced as stated. Gradio's upload box counts
# 1 MB = 1,048,576 bytes: so does this limit, and the browser's refusal and ours name the same figure.
MAX_UPLOAD_MB = 32
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 2**20  # also passed to launch(max_file_size=...)
MAX_UPLOAD_PIXELS = 36_000_000  # width × height, checked before decoding
WORKING_SIZE = 224  # MedMNIST-C and MediMeta-C are defined at 224 × 224, and the models see 224 × 224
SEED = 0  # the random corruptions' draws depend on (seed, key, corruption, severity) only: reproducible
SEVERITIES = (1, 2, 3, 4, 5)
ROLES = ("base", "adapted")
TOP_CLASSES = 5

logger = logging.getLogger("robustmedclip_demo")


# --------------------------------------------------------------------------------------------------------------------
# Datasets: class names (in the data's label order) and corruption suites
# --------------------------------------------------------------------------------------------------------------------

MEDIMETA_MODALITIES = {
    "aml": "blood-cell microscopy",
    "pbc": "blood-cell microscopy",
    "fundus": "retinal fundus",
    "mammo_calc": "mammography",
    "mammo_mass": "mammography",
    "oct": "retinal OCT",
    "pneumonia": "chest X-ray",
}


@dataclass(frozen=True)
class DatasetChoice:
    """A dataset the user can pick: the prompt's dataset id, its class names and its corruption suite."""

    key: str
    collection: str
    modality: str
    class_names: tuple[str, ...]
    suite: str

    @property
    def label(self) -> str:
        """The dropdown text (short enough not to be cut off; the status line gives the classes)."""
        return f"{self.key} — {self.modality}"


def dataset_catalogue() -> dict[str, DatasetChoice]:
    """The MediMeta-C datasets (suite ``medimeta-c``) and the single-label MedMNIST-C ones (``medmnist-c/<flag>``)."""
    choices = {
        key: DatasetChoice(key, "MediMeta-C", MEDIMETA_MODALITIES[key], MEDIMETA_CLASS_NAMES[key], "medimeta-c")
        for key in MEDIMETA_DATASETS
    }
    suites = set(list_suites())
    for flag, info in MEDMNIST_INFO.items():
        if not info.multilabel and f"medmnist-c/{flag}" in suites:  # ChestMNIST is multi-label: not zero-shot
            choices[flag] = DatasetChoice(flag, "MedMNIST-C", info.modality, info.labels, f"medmnist-c/{flag}")
    return choices


DATASETS = dataset_catalogue()


def _dataset(key: str) -> DatasetChoice:
    try:
        return DATASETS[key]
    except KeyError:
        raise gr.Error(f"unknown dataset {key!r}; choose one of: {', '.join(DATASETS)}") from None


def corruption_choices(dataset_key: str) -> list[str]:
    """The corruptions of the dataset's suite, in its generation order."""
    return list_corruptions(_dataset(dataset_key).suite)


# --------------------------------------------------------------------------------------------------------------------
# Sample images shipped by PyPI packages (real medical images under free licences)
# --------------------------------------------------------------------------------------------------------------------

SAMPLES: dict[str, BundledSample] = BUNDLED_SAMPLES
DEFAULT_SAMPLE = "retina"


@cache
def load_sample(key: str) -> MedicalImage:
    """A bundled sample, read once."""
    try:
        return SAMPLES[key].load()
    except KeyError:
        raise gr.Error(f"unknown sample {key!r}; choose one of: {', '.join(SAMPLES)}") from None


def samples_markdown() -> str:
    """The sources and licences of the samples, as a Markdown list."""
    return "\n".join(f"- **{s.title}** — {s.source}. Licence: {s.licence}." for s in SAMPLES.values())


# --------------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------------


def size_text(n: int) -> str:
    """A byte count as the upload box states it: ``"32.0 MB"`` (1 MB = 1,048,576 bytes), or ``"1,000 bytes"``."""
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n:,} bytes"


def pixels_text(n: int) -> str:
    """A pixel count: ``"36.0 Mpx"``, or ``"77,999 px"`` below 1 Mpx."""
    return f"{n / 1e6:.1f} Mpx" if n >= 1_000_000 else f"{n:,} px"


def upload_limits_text() -> str:
    """The upload limits in words, as the upload box's label states them."""
    return f"up to {size_text(MAX_UPLOAD_BYTES)} and {pixels_text(MAX_UPLOAD_PIXELS)}"


_PILLOW_BOMB = re.compile(r"Image size \((\d+) pixels\) exceeds limit")


def _reason(error: ImageReadError) -> str:
    """The reader's reason, with Pillow's own pixel limit (for images far over ours) restated as ours."""
    bomb = _PILLOW_BOMB.search(str(error))
    if bomb:
        return (
            f"the image has {pixels_text(int(bomb[1]))}; the limit is {pixels_text(MAX_UPLOAD_PIXELS)}: "
            "downscale it first"
        )
    return str(error)


def _rejected(name: str, reason: str) -> gr.Error:
    """The error of a refused upload: one log line (no traceback), and a message that stays until closed."""
    logger.warning("rejected upload %s: %s", name, reason)
    return gr.Error(f"Cannot use {name}: {reason}", title="Unreadable image", duration=None, print_exception=False)


def read_upload(path: str | os.PathLike) -> MedicalImage:
    """Reads an uploaded file as 8-bit grey or RGB, within the Space's limits (:func:`upload_limits_text`).

    Raises:
        gr.Error: With the reason, if the file cannot be read or is too large (shown in the UI; the server logs one
            line, not a traceback).
    """
    name = Path(path).name
    try:
        size = Path(path).stat().st_size
    except OSError as error:
        raise _rejected(name, f"the upload cannot be read ({error.strerror or error})") from None
    if size > MAX_UPLOAD_BYTES:
        raise _rejected(name, f"the file is {size_text(size)}; the limit is {size_text(MAX_UPLOAD_BYTES)}")
    try:
        return read_medical_image(path, max_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_UPLOAD_PIXELS)
    except ImageReadError as error:
        raise _rejected(name, _reason(error)) from None


# DICOM Modality (0008,0060) → the dataset of that modality whose classes are offered first.
MODALITY_DATASETS = {
    "CT": "organamnist",
    "CR": "pneumonia",
    "DX": "pneumonia",
    "MG": "mammo_mass",
    "US": "breastmnist",
    "OP": "fundus",
    "OPT": "oct",
    "SM": "pathmnist",
    "XC": "dermamnist",
}


def dicom_modality(path: str | os.PathLike) -> str | None:
    """The DICOM Modality tag of a file (``"CT"``, ``"MR"`` …), or ``None`` for a non-DICOM file or no tag."""
    with open(path, "rb") as handle:
        handle.seek(128)
        if handle.read(4) != b"DICM":
            return None
    import pydicom

    try:
        modality = str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality") or "").strip()
    except Exception:  # a damaged file: read_upload says why when it is analysed
        return None
    return modality or None


def suggest_dataset(upload: str | None, current: str) -> tuple[str, str]:
    """The dataset an upload's modality suggests, and why, in words.

    Returns:
        ``(dataset key, note)``: the suggested dataset when the DICOM modality names one of :data:`DATASETS`'s,
        else ``current`` with a note saying that the label set was not chosen from the image.
    """
    modality = dicom_modality(upload) if upload else None
    key = MODALITY_DATASETS.get(modality or "")
    if key in DATASETS:
        return key, f"suggested by the DICOM modality {modality}"
    what = f"DICOM modality {modality} matches none of the datasets" if modality else "the file names no modality"
    return current, f"{what}: kept `{current}`; choose the dataset whose classes fit the image"


def to_working_size(pixels: np.ndarray, size: int = WORKING_SIZE) -> np.ndarray:
    """Resizes the shorter side to ``size`` (Lanczos down, bicubic up) and centre-crops to ``size × size``.

    Grey images stay ``H×W``, colour ``H×W×3``; the dtype stays uint8.
    """
    pil = Image.fromarray(pixels)
    width, height = pil.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new != (width, height):
        method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
        pil = pil.resize(new, method)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return np.asarray(pil.crop((left, top, left + size, top + size)))


def corrupt_all(image: np.ndarray, dataset_key: str, corruption: str) -> dict[int, np.ndarray]:
    """The image at severity 0 (itself) and at severities 1–5 of ``corruption`` in the dataset's suite."""
    suite = _dataset(dataset_key).suite
    if corruption not in list_corruptions(suite):
        raise gr.Error(
            f"{corruption!r} is not a corruption of {suite}; choose one of: {', '.join(list_corruptions(suite))}"
        )
    return {0: image, **{s: corrupt(image, corruption, s, suite=suite, seed=SEED, key=0) for s in SEVERITIES}}


# --------------------------------------------------------------------------------------------------------------------
# Models: created lazily, once, from environment variables
# --------------------------------------------------------------------------------------------------------------------

_model_lock = threading.Lock()
_models: dict[tuple[str, str], ZeroShotModel] = {}
_classifiers: dict[tuple[str, str, str], Any] = {}


def model_specs() -> dict[str, str]:
    """The base and adapted model specs, from ``HF_ROBUSTMED_BASE_MODEL`` and ``HF_ROBUSTMED_ADAPTED_MODEL``."""
    return {
        "base": os.environ.get("HF_ROBUSTMED_BASE_MODEL") or DEFAULT_BASE_MODEL,
        "adapted": os.environ.get("HF_ROBUSTMED_ADAPTED_MODEL") or DEFAULT_ADAPTED_MODEL,
    }


def device() -> str:
    """``HF_ROBUSTMED_DEVICE``, else ``cuda`` when available, else ``cpu``."""
    if os.environ.get("HF_ROBUSTMED_DEVICE"):
        return os.environ["HF_ROBUSTMED_DEVICE"]
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def get_model(spec: str) -> ZeroShotModel:
    """The model of ``spec``, created on first use and kept (failures are not kept: the next call retries)."""
    key = (spec, device())
    with _model_lock:
        if key not in _models:
            from hf_robustmed.models import create_model

            _models[key] = create_model(spec, device=key[1])
        return _models[key]


def preload_models() -> threading.Thread:
    """Creates both models in a background thread, so that the first analysis does not wait for them.

    Importing torch, open_clip and PEFT and creating the models is most of the time from start to the first
    prediction; :func:`get_model`'s lock makes an analysis that comes first wait for this thread instead of loading
    a second copy. A model that cannot be loaded is logged here, and reported by the analysis that needs it.

    Returns:
        The started (daemon) thread.
    """

    def load() -> None:
        for role, spec in model_specs().items():
            try:
                get_model(spec)
            except Exception as error:  # reported again, to the user, by the analysis that needs the model
                logger.warning("could not preload the %s model %s: %s: %s", role, spec, type(error).__name__, error)

    thread = threading.Thread(target=load, name="preload-models", daemon=True)
    thread.start()
    return thread


def _classifier(model: ZeroShotModel, spec: str, choice: DatasetChoice):
    key = (spec, device(), choice.key)
    with _model_lock:
        if key not in _classifiers:
            _classifiers[key] = model.classifier(list(choice.class_names), choice.key).to(key[1])
        return _classifiers[key]


def class_probabilities(spec: str, images: Sequence[np.ndarray], dataset_key: str) -> np.ndarray:
    """Zero-shot class probabilities (softmax of ``logit_scale · cos``), ``N × C`` in the dataset's label order.

    Prompts follow the paper's template, ``a medical image of a {class} belonging to {dataset}``.
    """
    import torch

    choice = _dataset(dataset_key)
    model = get_model(spec)
    weights = _classifier(model, spec, choice)
    with torch.no_grad():
        features = model.encode_images(model.preprocess_arrays(list(images)).to(device()))
        return torch.softmax(model.logits(features, weights).float(), dim=-1).cpu().numpy()


# --------------------------------------------------------------------------------------------------------------------
# The analysis of one image
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Analysis:
    """An image under one corruption at every severity, and both models' probabilities on each.

    Attributes:
        images: Severity (0 = clean) → the ``WORKING_SIZE`` image.
        probabilities: Role (``base``, ``adapted``) → ``6 × C`` probabilities, rows severities 0–5.
        specs: Role → model spec.
        failures: Role → why that model could not be used (it is then missing from ``probabilities``).
        class_names: The dataset's classes, the columns of the probabilities.
        provenance: Role → the loaded model's ``provenance`` (``weights``: ``pretrained`` or ``stand-in``).
    """

    images: dict[int, np.ndarray]
    probabilities: dict[str, np.ndarray]
    specs: dict[str, str]
    failures: dict[str, str]
    class_names: tuple[str, ...]
    provenance: dict[str, dict] = field(default_factory=dict)


_analyses: OrderedDict[tuple, Analysis] = OrderedDict()
_ANALYSES_KEPT = 16


def analyse(image: np.ndarray, dataset_key: str, corruption: str) -> Analysis:
    """Corrupts the image at severities 1–5 and classifies all six images with both models (results are cached).

    Args:
        image: The ``WORKING_SIZE`` uint8 image (grey or RGB).
        dataset_key: A key of :data:`DATASETS`.
        corruption: A corruption of the dataset's suite.

    Raises:
        gr.Error: If neither model can be loaded, or the dataset or corruption is unknown.
    """
    specs = model_specs()
    digest = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()
    key = (digest, dataset_key, corruption, tuple(specs.values()), device())
    if key in _analyses:
        _analyses.move_to_end(key)
        return _analyses[key]
    images = corrupt_all(image, dataset_key, corruption)
    batch = [images[s] for s in (0, *SEVERITIES)]
    probabilities, failures, provenance = {}, {}, {}
    for role, spec in specs.items():
        try:
            probabilities[role] = class_probabilities(spec, batch, dataset_key)
            provenance[role] = dict(get_model(spec).provenance)
        except Exception as error:  # a model that cannot be loaded (missing weights, no network): say so, go on
            failures[role] = f"{type(error).__name__}: {error}"
    if not probabilities:
        raise gr.Error(
            "No model could be loaded. " + " ".join(f"{role} ({specs[role]}): {why}" for role, why in failures.items())
        )
    result = Analysis(images, probabilities, specs, failures, _dataset(dataset_key).class_names, provenance)
    if not failures:  # a failed model is retried next time
        _analyses[key] = result
        while len(_analyses) > _ANALYSES_KEPT:
            _analyses.popitem(last=False)
    return result


def probability_dict(class_names: Sequence[str], probs: np.ndarray) -> dict[str, float]:
    """``{class name: probability}`` for ``gr.Label``."""
    return {name: float(p) for name, p in zip(class_names, probs, strict=True)}


SWEEP_COLUMNS = ["severity", "probability", "model", "class"]


def severity_label(severity: int) -> str:
    """The sweep's x value: ``"0 (clean)"``, ``"1"`` … ``"5"`` (strings that sort in severity order)."""
    return "0 (clean)" if severity == 0 else str(severity)


def sweep_frame(analysis: Analysis) -> pd.DataFrame:
    """Per model, the probability of its clean prediction at severities 0 (clean) to 5.

    Columns: ``severity`` (:func:`severity_label`), ``probability``, ``model`` (the role, ``base`` or ``adapted``,
    with "(stand-in)" for stand-in weights: short, so that the legend is not cut off; the specs are in the status)
    and ``class`` (the class the model predicts on the clean image).
    """
    rows = []
    for role, probs in analysis.probabilities.items():
        predicted = int(np.argmax(probs[0]))
        standin = analysis.provenance.get(role, {}).get("weights") == "stand-in"
        model = f"{role} (stand-in)" if standin else role
        rows += [
            {
                "severity": severity_label(s),
                "probability": float(probs[s, predicted]),
                "model": model,
                "class": analysis.class_names[predicted],
            }
            for s in (0, *SEVERITIES)
        ]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def _model_line(analysis: Analysis, role: str, severity: int) -> str:
    spec = analysis.specs[role]
    if role in analysis.failures:
        return f"- **{role}** `{spec}`: could not be loaded — {analysis.failures[role]}"
    probs = analysis.probabilities[role]
    clean, corrupted = int(np.argmax(probs[0])), int(np.argmax(probs[severity]))
    standin = (
        " (**stand-in weights**: a tiny random model, not the real one; its predictions mean nothing)"
        if analysis.provenance.get(role, {}).get("weights") == "stand-in"
        else ""
    )
    line = f"- **{role}** `{spec}`{standin}: clean → **{analysis.class_names[clean]}** ({probs[0, clean]:.0%})"
    if severity:
        change = "same prediction" if clean == corrupted else "**prediction changed**"
        line += (
            f", corrupted → **{analysis.class_names[corrupted]}** ({probs[severity, corrupted]:.0%}); "
            f"{change}; P(clean prediction) {probs[0, clean]:.0%} → {probs[severity, clean]:.0%}"
        )
    return line


def status_markdown(
    source: str,
    image: MedicalImage,
    dataset_key: str,
    corruption: str,
    severity: int,
    analysis: Analysis,
    dataset_note: str = "",
) -> str:
    """What was done, in words: the image, its conversion, the corruption and parameter, both models' predictions."""
    choice = _dataset(dataset_key)
    height, width = image.pixels.shape[:2]
    if severity:
        param = format_param(get_suite(choice.suite).corruptions[corruption].params[severity - 1])
        what = f"**{corruption}**, severity {severity} (parameter {param}) of suite `{choice.suite}`, seed {SEED}"
    else:
        what = "none (severity 0 = clean)"
    lines = [
        f"- **image**: {source}; {image.note}; {width}×{height} px → {WORKING_SIZE}×{WORKING_SIZE} "
        "(shorter side resized, centre crop)",
        f"- **dataset**: `{choice.key}` ({choice.collection}, {choice.modality})"
        f"{f' — {dataset_note}' if dataset_note else ''}; label set: {', '.join(choice.class_names)}; "
        f"prompts “a medical image of a {{class}} belonging to {choice.key}”",
        f"- **corruption**: {what}",
        *(_model_line(analysis, role, severity) for role in ROLES),
    ]
    return "\n".join(lines)


def _empty_outputs(message: str) -> tuple:
    """Cleared images, probabilities and sweep, and ``message`` as the status."""
    return (None, None, None, None, None, None, pd.DataFrame(columns=SWEEP_COLUMNS), message)


def run_analysis(upload: str | None, sample: str | None, dataset_key: str, corruption: str, severity: float) -> tuple:
    """The handler of the first tab (API name ``/analyse``).

    Args:
        upload: Path of an uploaded file; takes precedence over ``sample``.
        sample: A key of :data:`SAMPLES`, used when nothing is uploaded.
        dataset_key: A key of :data:`DATASETS`.
        corruption: A corruption of the dataset's suite.
        severity: 0 (clean) to 5.

    Returns:
        Clean image, corrupted image, the four probability dicts (base clean, base corrupted, adapted clean,
        adapted corrupted; ``None`` for a model that could not be loaded), the severity sweep frame, a status text.

    Raises:
        gr.Error: For an unreadable or too large upload, an unknown dataset, corruption or severity.
    """
    try:
        severity = int(severity)
    except (TypeError, ValueError):
        raise gr.Error(f"severity must be an integer from 0 to 5, got {severity!r}") from None
    if not 0 <= severity <= 5:
        raise gr.Error(f"severity must be from 0 (clean) to 5, got {severity}")
    if upload:
        image, source = read_upload(upload), f"upload `{Path(upload).name}`"
        suggested, note = suggest_dataset(upload, dataset_key)
        if suggested != dataset_key:
            note = f"chosen by you; the DICOM modality suggests `{suggested}`"
    elif sample:
        image, source = load_sample(sample), f"sample “{SAMPLES[sample].title}”"
        note = ""
    else:
        return _empty_outputs("Upload an image or pick a sample.")
    working = to_working_size(image.pixels)
    analysis = analyse(working, dataset_key, corruption)
    labels = []
    for role in ROLES:
        probs = analysis.probabilities.get(role)
        labels += (
            [None, None]
            if probs is None
            else [
                probability_dict(analysis.class_names, probs[0]),
                probability_dict(analysis.class_names, probs[severity]),
            ]
        )
    return (
        analysis.images[0],
        analysis.images[severity],
        *labels,
        sweep_frame(analysis),
        status_markdown(source, image, dataset_key, corruption, severity, analysis, note),
    )


def analyse_page(upload: str | None, sample: str | None, dataset_key: str, corruption: str, severity: float) -> tuple:
    """The page's handler: :func:`run_analysis`, but an error clears the outputs and stays readable in the page.

    Returns:
        :func:`run_analysis`'s outputs and the message box's text (empty when all went well). On an error the
        images, probabilities and sweep are cleared, and the status and message box give the reason.
    """
    try:
        return (*run_analysis(upload, sample, dataset_key, corruption, severity), "")
    except gr.Error as error:
        message = f"**{error.title}** — {error.message}"
        return (*_empty_outputs(message), message)


def on_upload(upload: str | None, dataset_key: str, corruption: str | None) -> tuple:
    """On an upload: clear the sample, and select the dataset its DICOM modality suggests (with a valid corruption)."""
    dataset_key, _ = suggest_dataset(upload, dataset_key)
    return None, dataset_key, update_corruptions(dataset_key, corruption)


def update_corruptions(dataset_key: str, current: str | None) -> gr.Dropdown:
    """The corruption dropdown for a dataset: its suite's corruptions, keeping the current one when it has it."""
    choices = corruption_choices(dataset_key)
    return gr.Dropdown(choices=choices, value=current if current in choices else choices[0])


def pick_sample(sample: str | None, dataset_key: str, corruption: str | None) -> tuple:
    """On picking a sample: clear the upload, select the sample's closest dataset and a valid corruption."""
    suggested = SAMPLES[sample].dataset if sample in SAMPLES else None
    dataset_key = suggested if suggested in DATASETS else dataset_key
    return None, dataset_key, update_corruptions(dataset_key, corruption)


# --------------------------------------------------------------------------------------------------------------------
# Leaderboard
# --------------------------------------------------------------------------------------------------------------------


_logged_causes: set[str] = set()


@contextlib.contextmanager
def _undefined_logged_once() -> Iterator[None]:
    """Turns the undefined-ratio warnings of the leaderboard's three computations into one log line per cause.

    The status already says what a mean rests on; the server log gets each distinct cause once per process, not
    three warnings per page load.
    """
    from hf_robustmed.metrics import UndefinedMetricWarning
    from hf_robustmed.report import condense_undefined

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedMetricWarning)
        yield
    for warning in caught:
        if not issubclass(warning.category, UndefinedMetricWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    for message in condense_undefined(
        [str(w.message) for w in caught if issubclass(w.category, UndefinedMetricWarning)]
    ):
        if message not in _logged_causes:
            _logged_causes.add(message)
            logger.info("leaderboard: %s", message)


def results_path() -> Path:
    """``HF_ROBUSTMED_RESULTS``, else ``results/results.parquet`` beside this file."""
    return Path(os.environ.get("HF_ROBUSTMED_RESULTS") or DEFAULT_RESULTS)


def leaderboard_view(results_file: str | None, reference: str | None) -> tuple:
    """The handler of the leaderboard tab (API name ``/leaderboard``).

    Args:
        results_file: An uploaded results file; ``None`` for :func:`results_path`.
        reference: The model errors are normalised by; ``None`` or absent from the results: ``clip-vit-b16`` when
            present, else the first model.

    Returns:
        The leaderboard frame (sorted by mCE, rounded), the CE-per-corruption figure, the CE-per-dataset figure,
        the reference dropdown, and a status text. Problems (no file, missing cells) are reported in the status,
        with an empty table.
    """
    from hf_robustmed.report import corruption_error_figure, dataset_error_figure, leaderboard, load_results

    path = Path(results_file) if results_file else results_path()
    empty = pd.DataFrame(columns=BOARD_COLUMNS)
    if not path.is_file():
        return (
            empty,
            None,
            None,
            gr.Dropdown(choices=[], value=None),
            f"No results file at `{path}`. Run `hf-robustmed evaluate ... -o <folder>` and set "
            "`HF_ROBUSTMED_RESULTS` to its `results.parquet`, or upload a results file here.",
        )
    try:
        with _undefined_logged_once():
            results = load_results(path)
            models = list(pd.unique(results.loc[results["metric"] == "accuracy", "model"].astype(str)))
            if not models:
                raise ValueError("the file has no accuracy rows")
            if reference not in models:
                reference = DEFAULT_REFERENCE if DEFAULT_REFERENCE in models else models[0]
            board = leaderboard(results, reference)
            datasets = list(pd.unique(results["dataset"].astype(str)))
            chart = corruption_error_figure(results, reference)
            radar = dataset_error_figure(results, reference)
    except (ValueError, KeyError) as error:
        return empty, None, None, gr.Dropdown(choices=[], value=None), f"Cannot read `{path.name}`: {error}"
    status = (
        f"`{path.name}`: {len(board)} models, {len(datasets)} datasets; reference `{reference}` = 100 "
        f"(lower is better). {_board_caveats(board)}Sort or filter a column from its header menu (⋮)."
    )
    return (board_display(board), chart, radar, gr.Dropdown(choices=models, value=reference), status)


# The leaderboard as shown: mCE stays the second column (sortable numbers); the pairs each mean rests on as text.
# Keys: the leaderboard's columns; values: the headers the table shows.
BOARD_HEADERS = {
    "model": "model",
    "mce": "mCE",
    "clean_err": "clean error",
    "rel_mce": "relative mCE",
    "mean_err": "mean error (%)",
    "clean_acc": "clean accuracy (%)",
    "corrupted_acc": "corrupted accuracy (%)",
    "mce_pairs": "mCE rests on",
    "rel_mce_pairs": "relative mCE rests on",
    "weights": "weights",
}
BOARD_COLUMNS = list(BOARD_HEADERS.values())


def board_display(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard for the table: stand-ins marked in the model column, "k of n" pairs per mean, rounded."""
    from hf_robustmed.report import model_label, pairs_text

    shown = board.round(2)
    shown["model"] = [model_label(m, w) for m, w in zip(board["model"], board["weights"], strict=True)]
    shown["mce_pairs"] = [pairs_text(d, p) for d, p in zip(board["ce_pairs"], board["pairs"], strict=True)]
    shown["rel_mce_pairs"] = [pairs_text(d, p) for d, p in zip(board["rel_ce_pairs"], board["pairs"], strict=True)]
    return shown[list(BOARD_HEADERS)].rename(columns=BOARD_HEADERS)


def _board_caveats(board: pd.DataFrame) -> str:
    """Sentences on what the figures rest on: means on under half of their pairs are blank; stand-ins; unknown."""
    notes = []
    for score, count, what in (("mce", "ce_pairs", "mCE"), ("rel_mce", "rel_ce_pairs", "relative mCE")):
        thin = board[board[score].isna()]
        if len(thin):
            row = thin.iloc[0]
            notes.append(
                f"**{what} not shown**: it would rest on {int(row[count])} of {int(row['pairs'])} "
                "corruption pairs (under half; the reference's ratio is undefined on the others)."
            )
    standins = list(board.loc[board["weights"] == "stand-in", "model"])
    if standins:
        notes.append(f"**Stand-in weights**: {', '.join(standins)} — tiny random models, their numbers mean nothing.")
    if (board["weights"] == "unknown").any():
        notes.append(
            "Weights (real or stand-in) are not recorded in this file for: "
            f"{', '.join(board.loc[board['weights'] == 'unknown', 'model'])}."
        )
    return " ".join(notes) + (" " if notes else "")


# --------------------------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------------------------

INTRO = """# RobustMedCLIP: medical vision-language models under image corruptions
Pick a sample or upload a medical image, choose the dataset whose classes it should be sorted into, a corruption
and a severity. The **base** model (BiomedCLIP) and the **adapted** one (RobustMedCLIP: BiomedCLIP with a few-shot
LoRA adapter) classify the clean and the corrupted image zero-shot. Corruptions are those of MedMNIST-C and
MediMeta-C, applied at 224×224. *A research demo — not for diagnosis.*"""


def build_demo() -> gr.Blocks:
    """The two-tab interface. Models load on the first analysis, not here."""
    first = DATASETS[SAMPLES[DEFAULT_SAMPLE].dataset]
    with gr.Blocks(title="RobustMedCLIP robustness demo") as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Try an image"):
            with gr.Row():
                with gr.Column(scale=1):
                    upload = gr.File(
                        label=f"Upload an image (PNG, JPEG, TIFF, DICOM; {upload_limits_text()})",
                        type="filepath",
                        elem_id="upload",
                    )
                    sample = gr.Dropdown(
                        [(s.title, key) for key, s in SAMPLES.items()],
                        value=DEFAULT_SAMPLE,
                        label="…or a sample",
                        elem_id="sample",
                    )
                    dataset = gr.Dropdown(
                        [(c.label, key) for key, c in DATASETS.items()],
                        value=first.key,
                        label="Dataset (class names and corruption suite)",
                        elem_id="dataset",
                    )
                    # allow_custom_value: the handlers check the corruption against the dataset's suite themselves;
                    # Gradio's own check races with the choices a previous event has just changed (issue #12).
                    corruption = gr.Dropdown(
                        list_corruptions(first.suite),
                        value=list_corruptions(first.suite)[0],
                        label="Corruption",
                        elem_id="corruption",
                        allow_custom_value=True,
                    )
                    severity = gr.Slider(0, 5, value=3, step=1, label="Severity (0 = clean)", elem_id="severity")
                    message = gr.Markdown(elem_id="message")
                with gr.Column(scale=2):
                    with gr.Row():
                        clean_image = gr.Image(label="clean", format="png", interactive=False, elem_id="clean")
                        corrupted_image = gr.Image(
                            label="corrupted", format="png", interactive=False, elem_id="corrupted"
                        )
                    with gr.Row():
                        base_clean = gr.Label(
                            num_top_classes=TOP_CLASSES, label="base model · clean", elem_id="base-clean"
                        )
                        base_corrupted = gr.Label(
                            num_top_classes=TOP_CLASSES, label="base model · corrupted", elem_id="base-corrupted"
                        )
                    with gr.Row():
                        adapted_clean = gr.Label(
                            num_top_classes=TOP_CLASSES, label="adapted model · clean", elem_id="adapted-clean"
                        )
                        adapted_corrupted = gr.Label(
                            num_top_classes=TOP_CLASSES, label="adapted model · corrupted", elem_id="adapted-corrupted"
                        )
            sweep = gr.LinePlot(
                x="severity",
                y="probability",
                color="model",
                y_lim=[0, 1],
                sort="x",
                tooltip=SWEEP_COLUMNS,
                x_title="severity",
                y_title="probability of the clean prediction",
                title="Probability of each model's clean prediction against severity",
                elem_id="sweep",
            )
            status = gr.Markdown(elem_id="status")
            with gr.Accordion("Sample images: sources and licences", open=False):
                gr.Markdown(samples_markdown())

        with gr.Tab("Leaderboard") as leaderboard_tab:
            gr.Markdown(
                "mCE of zero-shot models on the corruption benchmarks, from an `hf-robustmed evaluate` "
                "results file; errors are normalised by the reference model (= 100; lower is better)."
            )
            with gr.Row():
                results_file = gr.File(
                    label="Another results file (.parquet or .csv)",
                    file_types=[".parquet", ".csv"],
                    type="filepath",
                    height=120,
                    elem_id="results-file",
                )
                reference = gr.Dropdown([], value=None, label="Reference model", elem_id="reference")
            board_status = gr.Markdown(elem_id="board-status")
            board = gr.Dataframe(interactive=False, label="Leaderboard (sorted by mCE)", elem_id="board")
            with gr.Row():
                chart = gr.Plot(label="Corruption error per corruption", show_label=False, elem_id="ce-chart")
                radar = gr.Plot(label="Corruption error per dataset", show_label=False, elem_id="ce-radar")

        inputs = [upload, sample, dataset, corruption, severity]
        outputs = [
            clean_image,
            corrupted_image,
            base_clean,
            base_corrupted,
            adapted_clean,
            adapted_corrupted,
            sweep,
            status,
        ]
        page = [*outputs, message]
        private = {"api_visibility": "private"}
        # The API endpoint raises its errors (a client gets the reason); the page's events clear stale outputs and
        # keep the reason readable in the page (analyse_page).
        gr.Button(visible=False).click(run_analysis, inputs, outputs, api_name="analyse")
        gr.on([corruption.input, severity.change], analyse_page, inputs, page, trigger_mode="always_last", **private)
        upload.upload(on_upload, [upload, dataset, corruption], [sample, dataset, corruption], **private).then(
            analyse_page, inputs, page, **private
        )
        upload.clear(analyse_page, inputs, page, **private)
        sample.input(pick_sample, [sample, dataset, corruption], [upload, dataset, corruption], **private).then(
            analyse_page, inputs, page, **private
        )
        dataset.input(update_corruptions, [dataset, corruption], corruption, **private).then(
            analyse_page, inputs, page, **private
        )
        demo.load(analyse_page, inputs, page, **private)

        board_outputs = [board, chart, radar, reference, board_status]
        gr.on(
            [results_file.change, reference.input],
            leaderboard_view,
            [results_file, reference],
            board_outputs,
            api_name="leaderboard",
        )
        # Loaded when the tab is opened: matplotlib and the figures stay off the path to the first prediction.
        leaderboard_tab.select(leaderboard_view, [results_file, reference], board_outputs, **private)
    return demo


demo = build_demo()

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    preload_models()
    demo.queue().launch(max_file_size=MAX_UPLOAD_BYTES)
