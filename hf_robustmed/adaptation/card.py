"""The adapter's model card (``README.md``): recipe, data, selection and robustness results as model-index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import atomic_path
from ..models.peft_family import base_model_id
from ..templates import read_template
from .config import TrainConfig

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
        rows.append(
            {"dataset": dataset, "clean": float(clean.value.mean()), "corrupted": float(corrupted.value.mean())}
        )
    if not rows:
        raise ValueError(f"no dataset has both clean and corrupted results for {model!r}")
    return rows


def _eval_results(rows: list[dict[str, Any]], benchmark: str | None):
    from huggingface_hub import EvalResult

    results = []
    for row in rows:
        # one model-index entry per (dataset, config): the Hub groups results by dataset type and config
        for config, value, name in (
            (f"{row['dataset']}-clean", row["clean"], "clean accuracy"),
            (f"{row['dataset']}-corrupted", row["corrupted"], "mean corrupted accuracy"),
        ):
            results.append(
                EvalResult(
                    task_type="zero-shot-image-classification",
                    dataset_type=benchmark or row["dataset"],
                    dataset_name=row["dataset"],
                    dataset_config=config,
                    dataset_split="test",
                    metric_type="accuracy",
                    metric_name=name,
                    metric_value=round(value, 4),
                )
            )
    return results


def standin_reason(folder: Path, base_model: str, weights: str | None) -> str | None:
    """Why the adapter counts as trained on stand-in weights, or ``None``: its base's files carry the stand-in
    marker, its evaluation results say ``stand-in``, or its existing card already says so (e.g. when the base is
    not in the local cache any more)."""
    from huggingface_hub.repocard import metadata_load

    from ..models.provenance import STANDIN, STANDIN_KEY, is_standin, stored_provenance

    base = stored_provenance(base_model)
    if base["weights"] == STANDIN:
        return f"its base model `{base_model}` is a tiny randomly initialised stand-in (its files say so)"
    if weights == STANDIN:
        return "its evaluation results were obtained with stand-in weights"
    card = folder / "README.md"
    marker = (metadata_load(card) or {}).get(STANDIN_KEY) if card.is_file() else None
    if base["weights"] == "unknown" and is_standin(marker):  # the base cannot be checked here: keep what was known
        return marker.get("reason") or "its card said so when it was written"
    return None


def seen_corruptions(folder: str | Path) -> list[str]:
    """The corruptions an adapter saw in training (its corruption augmentation; empty for clean training), from
    its ``training_summary.json``: the list to pass to :func:`hf_robustmed.metrics.seen_held_out_mce`."""
    import json

    summary = json.loads((Path(folder) / "training_summary.json").read_text())
    return list(summary.get("seen_corruptions") or [])


def _augmentation_text(summary: dict[str, Any]) -> str:
    seen = summary.get("seen_corruptions") or []
    if not seen:
        return "none: clean images only (the paper's recipe); every evaluated corruption is held out"
    settings = [t for t in (summary.get("augmentation") or {}).values() if t]
    how = ""
    if settings:
        first = settings[0]
        levels = ",".join(map(str, first["severities"]))
        intensity = "continuous intensity" if first["continuous"] else f"severities {levels}"
        how = (
            f" (RandomCorruption, {intensity}, clean with probability {first['p_clean']:.2f}, keyed by seed, epoch, "
            "row)"
        )
    return (
        f"seen in training{how}: {', '.join(seen)}; robustness to these is not held out — report mCE on "
        "seen and held-out corruptions separately (`hf_robustmed.metrics.seen_held_out_mce`)"
    )


def _augmentation_note(summary: dict[str, Any]) -> str:
    seen = summary.get("seen_corruptions") or []
    return (
        f"> **Corruptions seen in training:** {', '.join(seen)}. Results on them are not held out; the mean "
        "corrupted accuracy below includes them."
    )


def _standin_note(reason: str) -> str:
    return (
        f"> **Stand-in weights.** This adapter was trained on a stand-in, not the real base model: {reason}. "
        "It exists to test the pipeline; its weights and results mean nothing."
    )


def update_adapter_card(
    folder: str | Path,
    *,
    repo_id: str | None = None,
    results=None,
    results_model: str | None = None,
    benchmark: str | None = None,
) -> Path:
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
        from ..report import load_results, model_weights

        frame = load_results(results)
        record = {
            "benchmark": benchmark,
            "rows": robustness_rows(frame, results_model or ""),
            "weights": model_weights(frame).get(results_model or ""),
        }
        with atomic_path(saved) as tmp:
            tmp.write_text(json.dumps(record, indent=1))
    record = json.loads(saved.read_text()) if saved.exists() else {"benchmark": None, "rows": []}
    return write_adapter_card(
        folder,
        config,
        summary,
        repo_id=repo_id,
        rows=record["rows"],
        benchmark=benchmark or record["benchmark"],
        weights=record.get("weights"),
    )


def write_adapter_card(
    folder: str | Path,
    config: TrainConfig,
    summary: dict[str, Any],
    *,
    repo_id: str | None = None,
    rows: list[dict[str, Any]] = (),
    benchmark: str | None = None,
    weights: str | None = None,
) -> Path:
    """Renders ``folder/README.md`` from the training config and summary, and robustness ``rows``
    (:func:`robustness_rows`).

    An adapter trained on a stand-in base (see :func:`standin_reason`; ``weights`` is the results' ``weights`` of
    the adapter, if known) says so at the top of the card and above its results, and its card data carries the
    stand-in marker that the ``peft:`` loader reads.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from ..models.provenance import STANDIN_KEY, standin_marker

    folder = Path(folder)
    base = base_model_id(config.base_model)
    rows = list(rows)
    name = folder.resolve().name
    reason = standin_reason(folder, config.base_model, weights)
    marker = {STANDIN_KEY: {**standin_marker(), "reason": reason}} if reason else {}
    data = ModelCardData(
        library_name="peft",
        base_model=base,
        license="mit",
        tags=TAGS,
        pipeline_tag="zero-shot-image-classification",
        model_name=name,
        eval_results=_eval_results(rows, benchmark) or None,
        seen_corruptions=list(summary.get("seen_corruptions") or []),
        **marker,
    )
    recipe = [
        (
            "LoRA",
            f"rank {config.rank}, alpha {config.lora_alpha:g}, dropout {config.dropout:g}, "
            f"on `{config.target_modules}`",
        ),
        ("trainable parameters", f"{summary['trainable_parameters']:,}"),
        ("optimiser", f"AdamW, lr {config.lr:g}, weight decay {config.weight_decay:g}, no scheduler"),
        ("epochs / batch", f"{summary['epochs_run']} run of {config.epochs} / {config.batch_size}"),
        (
            "loss",
            f"cross-entropy over {summary['classes']} classes, image features "
            f"{'normalised' if config.normalize_image_features else 'unnormalised'} × normalised prompt "
            f"features / {config.temperature:g}",
        ),
        ("training prompt", f"`{config.train_template}`"),
        ("corruption augmentation", _augmentation_text(summary)),
        ("precision", config.mixed_precision if config.mixed_precision != "no" else "fp32"),
        ("seed", config.seed),
    ]
    card = ModelCard.from_template(
        data,
        template_str=read_template("adapter_card.md"),
        model_name=name,
        base_model=base,
        repo_id=repo_id or f"<org>/{name}",
        n_datasets=len(summary["datasets"]),
        n_classes=summary["classes"],
        recipe=recipe,
        split=config.split,
        sample=f"a stratified {config.fraction:.0%} per dataset"
        if config.fraction
        else f"{config.shots} images per class",
        seed=config.seed,
        datasets=", ".join(summary["datasets"]),
        selection=summary["selection"],
        leaks=summary["selection_leaks_test_data"],
        selected_epoch=summary["selected_epoch"],
        epochs_run=summary["epochs_run"],
        selection_score=summary["selection_score"],
        results=rows,
    )
    text = str(card)
    if summary.get("seen_corruptions"):
        text = text.replace(
            "on few-shot clean images of", "on few-shot images (clean, and corrupted as the training table says) of", 1
        )
        text = text.replace(
            "\n## Robustness results\n", f"\n## Robustness results\n\n{_augmentation_note(summary)}\n", 1
        )
    if reason:
        note = _standin_note(reason)
        text = text.replace(f"\n# {name}\n", f"\n# {name}\n\n{note}\n", 1)
        text = text.replace("\n## Robustness results\n", f"\n## Robustness results\n\n{note}\n", 1)
    path = folder / "README.md"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
