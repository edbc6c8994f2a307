"""The study's outputs: the paper's table side by side with ours under each protocol, the figures, and the record.

``paper_table.md`` / ``paper_table.csv``: per protocol and model, clean error and mCE (CLIP ViT-B/16 = 100) per
collection and over all datasets, next to the published row (SPEC §9) and the differences; the figures of the
paper (radar charts per dataset, accuracy against severity; :func:`hf_robustmed.report.write_report`, one folder
per protocol); a "what differs and why" section made from the protocol records (:mod:`hf_robustmed.protocols`,
SPEC §11) and the study's own settings; and ``study.json``: versions, seeds, protocols, sources and every model's
weight provenance (stand-in or pretrained, digest).
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from .. import __version__
from ..files import atomic_path, write_json
from .plan import Counts
from .study import AVAILABILITY, MODALITIES, PAPER_FRACTIONS, REFERENCE, RmcRun, Study, StudyModel, evaluation_dir

# The headline table of the original README (SPEC §9): CLIP-normalised clean error and mCE, CLIP = 100.
PAPER_TABLE: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "CLIP": (100.0, 100.0),
        "MedCLIP": (106.4, 112.5),
        "BiomedCLIP": (116.3, 126.8),
        "UniMed-CLIP": (111.8, 98.87),
        "RobustMedCLIP": (62.8, 81.0),
    }
)
PAPER_SOURCE = "Imam, Marew, Yaqub, MIUA 2025; headline table of the README of BioMedIA-MBZUAI/RobustMedCLIP (SPEC §9)"

# The defects of the original code (SPEC §11) that bear on the table, in a sentence each.
DEFECT_NOTES: Mapping[str, str] = MappingProxyType(
    {
        "D1": "the original selected the RobustMedCLIP epoch on the clean test split",
        "D2": "BiomedCLIP and UniMed-CLIP text features were not L2-normalised, biasing their argmax",
        "D3": "every model got OpenAI mean/std, and CLIP was normalised twice",
        "D4": "the prompt class lists of pbc, fundus, mammo_calc, mammo_mass and oct are in another order than "
        "MedIMeta's labels, so prompts were paired with the wrong classes",
        "D5": "the original LoRA's k-branch started from a non-zero B (PEFT starts every B at zero)",
        "D6": "scores were the softmax of raw cosines (no logit scale): accuracy is unaffected, probabilities are not",
        "D12": "MedMNIST-C was repackaged with an undisclosed 7-corruption subset; no generation code was released",
    }
)
TABLE_COLUMNS = ("protocol", "model", "weights", "paper_row", "kind")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages the numbers depend on."""
    found = {"python": platform.python_version(), "hf-robustmed": __version__}
    for package in (
        "torch",
        "torchvision",
        "open_clip_torch",
        "timm",
        "transformers",
        "peft",
        "accelerate",
        "datasets",
        "numpy",
        "pillow",
        "opencv-python",
        "opencv-python-headless",
    ):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


# --- results --------------------------------------------------------------------------------------------------------
def gather(study: Study, models: Sequence[StudyModel]) -> tuple[pd.DataFrame, dict]:
    """All evaluation results (with ``protocol`` and ``collection`` columns) and the summaries, by folder."""
    from ..report import load_results

    frames, summaries = [], {}
    for protocol in study.protocols:
        for collection, _ in study.collections():
            for model in models:
                folder = evaluation_dir(study, protocol, collection.name, model.name)
                frame = load_results(folder / "results.parquet").drop(columns=["protocol"], errors="ignore")
                frames.append(frame.assign(protocol=protocol, collection=collection.name))
                summaries[(protocol, collection.name, model.name)] = json.loads((folder / "summary.json").read_text())
    return pd.concat(frames, ignore_index=True), summaries


def _score_rows(study: Study, results: pd.DataFrame, models: Sequence[StudyModel]) -> list[dict]:
    """One row per (protocol, model): our scores per collection and overall, the paper's, the differences."""
    from ..metrics import mce_table, well_covered
    from ..report import model_weights

    collections = {c.name: names for c, names in study.collections()}
    rows = []
    for protocol in study.protocols:
        part = results[results.protocol == protocol]
        table = mce_table(part, REFERENCE, collections)
        weights = model_weights(part)
        for model in models:
            score = table.loc[model.name]
            covered = well_covered(score["ce_pairs"], score["pairs"])
            row = {
                "protocol": protocol,
                "model": model.name,
                "weights": weights[model.name],
                "paper_row": model.paper_row,
                "kind": model.kind,
            }
            for name in collections:
                row[f"clean_err/{name}"] = score[f"clean_err/{name}"]
                row[f"mce/{name}"] = score[f"mce/{name}"]
            row["clean_err"] = score["clean_err"]
            row["mce"] = score["mce"] if covered else math.nan
            row["mce_pairs_defined"] = f"{int(score['ce_pairs'])} of {int(score['pairs'])}"
            if len(collections) > 1:
                for what in ("clean_err", "mce"):
                    row[f"{what}/mean of collections"] = sum(score[f"{what}/{n}"] for n in collections) / len(
                        collections
                    )
            paper_clean, paper_mce = PAPER_TABLE[model.paper_row]
            row |= {
                "paper_clean_err": paper_clean,
                "paper_mce": paper_mce,
                "diff_clean_err": row["clean_err"] - paper_clean,
                "diff_mce": row["mce"] - paper_mce,
            }
            rows.append(row)
    return rows


# --- markdown -------------------------------------------------------------------------------------------------------
def _number(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def _signed(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.1f}"


def _markdown_table(rows: Sequence[dict], collections: Sequence[str]) -> list[str]:
    from ..report import model_label

    groups = [*collections, *(["mean of collections"] if len(collections) > 1 else [])]
    header = [
        "model",
        "weights",
        "paper row",
        *(f"{what} {c}" for c in groups for what in ("clean err", "mCE")),
        "clean err (all)",
        "mCE (all)",
        "paper clean err",
        "paper mCE",
        "Δ clean err",
        "Δ mCE",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [
            model_label(row["model"], row["weights"]),
            row["weights"],
            row["paper_row"],
            *(_number(row[f"{what}/{c}"]) for c in groups for what in ("clean_err", "mce")),
            _number(row["clean_err"]),
            _number(row["mce"]),
            _number(row["paper_clean_err"]),
            _number(row["paper_mce"]),
            _signed(row["diff_clean_err"]),
            _signed(row["diff_mce"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _published(value: float) -> str:
    """A published number with the decimals it was given with (one at least): 100.0, 98.87."""
    return f"{value:.2f}".removesuffix("0")


def _paper_lines() -> list[str]:
    lines = ["| published row | clean err | mCE |", "|---|---|---|"]
    lines += [f"| {name} | {_published(clean)} | {_published(mce)} |" for name, (clean, mce) in PAPER_TABLE.items()]
    return lines


def _warnings(study: Study, rows: Sequence[dict], availability: dict) -> list[str]:
    notes = []
    standins = sorted({r["model"] for r in rows if r["weights"] == "stand-in"})
    if standins:
        notes.append(
            f"> **Stand-in weights**: {', '.join(standins)} are tiny randomly initialised stand-ins "
            "(`hf_robustmed.testing`), not the real models: their numbers show that the pipeline "
            "runs, not how the models behave, and must not be compared with the paper."
        )
    full = Study(study.out)
    subset = [
        what
        for what, ours, paper in (
            ("datasets", study.datasets, full.datasets),
            ("severities", study.severities, full.severities),
            ("epochs", study.epochs, full.epochs),
            ("training batch", study.train_batch_size, full.train_batch_size),
        )
        if ours != paper
    ] + (["corruptions"] if study.corruptions is not None else [])
    if subset:
        notes.append(
            f"> **Not the paper's full study**: {', '.join(subset)} differ from the paper's, so the "
            "numbers are not comparable with the published ones."
        )
    missing = [name for name, found in availability.items() if not found["available"]]
    if missing:
        notes.append(
            f"> The authors' checkpoints {', '.join(missing)} could not be fetched (see `study.json`): "
            "their rows are absent."
        )
    return notes


def differences(study: Study, availability: dict, training: dict) -> list[str]:
    """The "what differs and why" section: from the protocol records and the study's settings."""
    from ..protocols import get_protocol

    lines = ["## What differs and why", ""]
    reproduced = get_protocol("rmc").record()
    for protocol in study.protocols:
        record = get_protocol(protocol).record()
        if protocol == "standard":
            fixed = "; ".join(f"{d}: {DEFECT_NOTES[d]}" for d in reproduced["defects"])
            lines.append(
                f"* **standard** ({record['preprocessing']} preprocessing, class names in the data's label "
                f"order, normalised text features, logit scale): does **not** reproduce the original "
                f"evaluation's defects ({fixed}). Its numbers may legitimately differ from the paper's."
            )
        else:
            kept = "; ".join(f"{d}: {DEFECT_NOTES[d]}" for d in record["defects"])
            lines.append(f"* **{protocol}**: {record['description'].split(';')[0]}. Reproduces {kept}.")
            for key, text in record["defects_not_reproduced"].items():
                lines.append(f"  {key}, known but deliberately not reproduced: {text}.")
    selections = sorted({summary.get("selection", "?") for summary in training.values()})
    if training:
        lines.append(
            f"* **RobustMedCLIP training** (ours): PEFT LoRA on the fused qkv (D5: {DEFECT_NOTES['D5']}); "
            f"model selection {', '.join(selections)} — never the test split (D1: {DEFECT_NOTES['D1']}). "
            "The few-shot rows come from our stratified sampler (rounding up per class), not from "
            "scikit-learn's StratifiedShuffleSplit(random_state=42) (SPEC §7.2), so they are not the "
            "paper's exact rows."
        )
    lines.append(
        f"* **Which RobustMedCLIP checkpoint is the paper's row** is unknown (SPEC §7.1): every run of ranks "
        f"{sorted({r.rank for r in study.runs})} and fractions {sorted({r.fraction for r in study.runs})} % "
        f"is shown against it (the paper's fractions: {', '.join(map(str, PAPER_FRACTIONS))} %)."
    )
    lines.append(
        "* **MediMeta-C** is built here from MedIMeta with ImageNet-C's algorithms and default parameters "
        "(the authors' generation code, parameters and seeds are unknown, SPEC §3.2); **MedMNIST-C** uses "
        f"each dataset's full official registry (D12: {DEFECT_NOTES['D12']})."
    )
    lines.append(
        "* **Aggregation**: CE per (dataset, corruption) as ImageNet-C, CLIP ViT-B/16 = 100, unweighted means "
        "over the datasets of each collection and over all datasets (the paper's equations are unknown, "
        "SPEC §6); 'mean of collections' is the other reading of the paper's 'mCE (avg)'."
    )
    return lines


def write_paper_table(
    study: Study, rows: Sequence[dict], availability: dict, training: dict, reports: Mapping[str, Path], record: dict
) -> Path:
    """``paper_table.csv`` and ``paper_table.md`` (atomically); returns the Markdown file."""
    out = Path(study.out)
    collections = [c.name for c, _ in study.collections()]
    with atomic_path(out / "paper_table.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    lines = ["# The paper's robustness table, reproduced", ""]
    lines += _warnings(study, rows, availability)
    lines += ["", f"Published ({PAPER_SOURCE}); clean error and mCE normalised by CLIP (= 100), lower is better:", ""]
    lines += _paper_lines()
    lines += [
        "",
        (
            f"Ours: hf-robustmed {__version__}, reference {REFERENCE} = 100 under each protocol; clean error = "
            "100 · E_clean / E_clean(CLIP); mCE = 100 · mean over corruptions of Σ_s E / Σ_s E(CLIP), per "
            "dataset, "
            "then unweighted means (SPEC §6). Δ = ours (all datasets) − published. Weights: `pretrained` or "
            "`stand-in` (from each loaded model's provenance)."
        ),
        "",
    ]
    for protocol in study.protocols:
        lines += [f"## Protocol `{protocol}`", ""]
        lines += _markdown_table([r for r in rows if r["protocol"] == protocol], collections) + [""]
        folder = reports[protocol].name
        lines += [
            (
                f"Figures: ![clean top-1 per dataset]({folder}/radar_top1.png) "
                f"![corruption error per dataset]({folder}/radar_ce.png) "
                f"![accuracy against severity]({folder}/accuracy_vs_severity.png) — full report: "
                f"[{folder}/report.md]({folder}/report.md)"
            ),
            "",
        ]
    lines += differences(study, availability, training) + [""]
    lines += provenance(study, record)
    lines += ["", "Everything else (settings, sources, protocol records, training summaries): `study.json`.", ""]
    with atomic_path(out / "paper_table.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return out / "paper_table.md"


def provenance(study: Study, record: dict) -> list[str]:
    """The "Provenance" section: versions, seeds and every model's weights (paths inside the output folder are
    written relative to it, so that the same study gives the same file wherever it lies)."""
    out = str(Path(study.out).resolve())
    lines = [
        "## Provenance",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()) + ".",
        (
            f"Seeds: corruptions {record['seeds']['corruptions']} (per image, SPEC §2.3), training "
            f"{record['seeds']['training']}. Protocols: {', '.join(study.protocols)} (records in `study.json`)."
        ),
        "",
        "| model | spec | weights | weights SHA-256 |",
        "|---|---|---|---|",
    ]
    for name, model in record["models"].items():
        spec = model["spec"].replace(out, ".")
        lines.append(f"| {name} | `{spec}` | {model['weights']} | `{(model['weights_sha256'] or '')[:16]}…` |")
    return lines


# --- the study record -----------------------------------------------------------------------------------------------
def _model_record(model: StudyModel, summaries: dict) -> dict:
    found = [s["models"][model.name] for key, s in summaries.items() if key[2] == model.name]
    first = found[0] if found else {}
    return {
        "spec": model.spec,
        "kind": model.kind,
        "paper_row": model.paper_row,
        "overridden": model.overridden,
        "weights": first.get("weights"),
        "weights_sha256": first.get("weights_sha256"),
    }


def study_record(
    study: Study, counts: Counts, models: Sequence[StudyModel], summaries: dict, availability: dict, training: dict
) -> dict:
    from ..protocols import get_protocol

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(study).items()}
    settings["out"], settings["source_root"] = ".", str(study.sources)
    benchmarks = {collection: s["benchmark_sha256"] for (_, collection, _), s in summaries.items()}
    return {
        "hf_robustmed": __version__,
        "versions": versions(),
        "settings": settings,
        "seeds": {"corruptions": study.seed, "training": study.train_seed},
        "protocols": {p: get_protocol(p).record() for p in study.protocols},
        "reference": REFERENCE,
        "sources": {
            "root": str(study.sources),
            "benchmarks_sha256": benchmarks,
            "test_images": counts.test,
            "corruptions": counts.corruptions,
        },
        "models": {m.name: _model_record(m, summaries) for m in models},
        "original_checkpoints": availability,
        "training": training,
        "paper": {"source": PAPER_SOURCE, "table": dict(PAPER_TABLE)},
    }


def write_outputs(study: Study, counts: Counts, originals: Sequence[RmcRun]) -> Path:
    """Writes every output of the study from its evaluation folders; returns ``paper_table.md``."""
    from ..report import write_report

    models = study.models(originals)
    results, summaries = gather(study, models)
    out = Path(study.out)
    with atomic_path(out / "results.parquet") as tmp:
        results.to_parquet(tmp, index=False)
    with atomic_path(out / "results.csv") as tmp:
        results.to_csv(tmp, index=False)
    collections = {c.name: names for c, names in study.collections()}
    modalities = {d: m for d, m in MODALITIES.items() if d in study.datasets}
    reports = {}
    for protocol in study.protocols:
        reports[protocol] = out / f"report-{protocol}"
        write_report(
            results[results.protocol == protocol].drop(columns=["protocol", "collection"]),
            reports[protocol],
            reference=REFERENCE,
            collections=collections,
            modalities=modalities,
        )
    path = out / AVAILABILITY
    availability = json.loads(path.read_text()) if path.is_file() else {}
    training = {
        r.trained_name: json.loads((study.adapter_dir(r, "trained") / "training_summary.json").read_text())
        for r in (study.runs if study.train else ())
    }
    rows = _score_rows(study, results, models)
    record = study_record(study, counts, models, summaries, availability, training)
    write_json(out / "study.json", record)
    return write_paper_table(study, rows, availability, training, reports, record)
