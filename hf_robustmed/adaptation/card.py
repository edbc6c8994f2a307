"""The adapter's model card (``README.md``): recipe, data, selection and robustness results as model-index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import atomic_path
from ..models.peft_family import base_model_id
from .config import TrainConfig

TEMPLATE = Path(__file__).resolve().parents[2] / "model_cards" / "adapter_card.md"
RESULTS_FILE = "robustness_results.json"
TAGS = ["peft", "lora", "open_clip", "medical", "robustness", "zero-shot-image-classification", "hf-robustmed"]


def robustness_rows(results, model: str) -> list[dict[str, Any]]:
    """Per dataset: clean accuracy and mean accuracy over corrupted cells, from long-format evaluation results."""
    frame = results[(results.model == model) & (results.metric == "accuracy")]
    if frame.empty:
        raise ValueError(f"no accuracy results for model {model!r} (models present: {sorted(set(results.model))})")
    rows = []
    for dataset, group in frame.groupby("dataset", sort=False):
        clean, corrupted = group[group.corruption == "clean"], group[group.corruption != "clean"]
        if clean.empty or corrupted.empty:
            continue
        rows.append({"dataset": dataset, "clean": float(clean.value.mean()), "corrupted": float(corrupted.value.mean())})
    if not rows:
        raise ValueError(f"no dataset has both clean and corrupted results for {model!r}")
    return rows


def _eval_results(rows: list[dict[str, Any]], benchmark: str | None):
    from huggingface_hub import EvalResult

    results = []
    for row in rows:
        # one model-index entry per (dataset, config): the Hub groups results by dataset type and config
        for config, value, name in ((f"{row['dataset']}-clean", row["clean"], "clean accuracy"),
                                    (f"{row['dataset']}-corrupted", row["corrupted"], "mean corrupted accuracy")):
            results.append(EvalResult(task_type="zero-shot-image-classification", dataset_type=benchmark or row["dataset"],
                                      dataset_name=row["dataset"], dataset_config=config, dataset_split="test",
                                      metric_type="accuracy", metric_name=name, metric_value=round(value, 4)))
    return results


def update_adapter_card(folder: str | Path, *, repo_id: str | None = None, results=None, results_model: str | None = None,
                        benchmark: str | None = None) -> Path:
    """Re-renders a trained adapter's card from its saved config and summary, optionally with new results.

    Args:
        folder: The adapter folder written by training.
        repo_id: Hub repo the card's snippets name (default: the folder's name under ``<org>/``).
        results: Long-format evaluation results (``hf-robustmed evaluate``), or the path of their Parquet/CSV file;
            the rows of ``results_model`` become the card's robustness table and model-index (kept for later
            re-renders in ``robustness_results.json``).
        benchmark: Hub id of the evaluated benchmark, for the model-index ``dataset.type``.
    """
    import json

    folder = Path(folder)
    config = TrainConfig.from_yaml(folder / "training_config.yaml")
    summary = json.loads((folder / "training_summary.json").read_text())
    saved = folder / RESULTS_FILE
    if results is not None:
        from ..report import load_results

        record = {"benchmark": benchmark, "rows": robustness_rows(load_results(results), results_model or "")}
        with atomic_path(saved) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
    record = json.loads(saved.read_text()) if saved.exists() else {"benchmark": None, "rows": []}
    return write_adapter_card(folder, config, summary, repo_id=repo_id, rows=record["rows"],
                              benchmark=benchmark or record["benchmark"])


def write_adapter_card(folder: str | Path, config: TrainConfig, summary: dict[str, Any], *, repo_id: str | None = None,
                       rows: list[dict[str, Any]] = (), benchmark: str | None = None) -> Path:
    """Renders ``folder/README.md`` from the training config and summary, and robustness ``rows``
    (:func:`robustness_rows`)."""
    from huggingface_hub import ModelCard, ModelCardData

    if not TEMPLATE.exists():
        raise FileNotFoundError(f"adapter card template not found at {TEMPLATE}; run from a source checkout")
    folder = Path(folder)
    base = base_model_id(config.base_model)
    rows = list(rows)
    name = folder.resolve().name
    data = ModelCardData(library_name="peft", base_model=base, license="mit", tags=TAGS,
                         pipeline_tag="zero-shot-image-classification", model_name=name,
                         eval_results=_eval_results(rows, benchmark) or None)
    recipe = [
        ("LoRA", f"rank {config.rank}, alpha {config.lora_alpha:g}, dropout {config.dropout:g}, "
                 f"on `{config.target_modules}`"),
        ("trainable parameters", f"{summary['trainable_parameters']:,}"),
        ("optimiser", f"AdamW, lr {config.lr:g}, weight decay {config.weight_decay:g}, no scheduler"),
        ("epochs / batch", f"{summary['epochs_run']} run of {config.epochs} / {config.batch_size}"),
        ("loss", f"cross-entropy over {summary['classes']} classes, image features "
                 f"{'normalised' if config.normalize_image_features else 'unnormalised'} × normalised prompt "
                 f"features / {config.temperature:g}"),
        ("training prompt", f"`{config.train_template}`"),
        ("precision", config.mixed_precision if config.mixed_precision != "no" else "fp32"),
        ("seed", config.seed),
    ]
    card = ModelCard.from_template(
        data, template_str=TEMPLATE.read_text(),
        model_name=name, base_model=base, repo_id=repo_id or f"<org>/{name}",
        n_datasets=len(summary["datasets"]), n_classes=summary["classes"], recipe=recipe, split=config.split,
        sample=f"a stratified {config.fraction:.0%} per dataset" if config.fraction else f"{config.shots} images per class",
        seed=config.seed, datasets=", ".join(summary["datasets"]), selection=summary["selection"],
        leaks=summary["selection_leaks_test_data"], selected_epoch=summary["selected_epoch"],
        epochs_run=summary["epochs_run"], selection_score=summary["selection_score"], results=rows,
    )
    path = folder / "README.md"
    with atomic_path(path) as tmp:
        tmp.write_text(str(card))
    return path
