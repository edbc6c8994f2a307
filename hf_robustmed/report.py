"""The robustness report of evaluation results: Markdown tables, figures and a leaderboard, laid out like "On the
Robustness of Medical Vision-Language Models" (Imam et al. 2025).

>>> from hf_robustmed.report import write_report
>>> write_report("results.parquet", "report/", modalities={"bloodmnist": "microscopy", "chestmnist": "X-ray"})
PosixPath('report/report.md')

Accuracies are top-1, in percent. Clean error, mCE and relative mCE are those of
:func:`hf_robustmed.metrics.mce_table`: normalised so that the reference model scores 100; the charts show the
corruption error CE = mCE / 100. Every mean over datasets is unweighted, and a dataset's corrupted accuracy is the
mean over its corruptions and severities. The figures need matplotlib (``pip install hf-robustmed[viz]``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .figures import _colours, _new_figure, save_figure
from .files import atomic_path
from .metrics import CLEAN, RESULT_COLUMNS, UndefinedMetricWarning, _require_columns, corruption_errors, mce_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LEADERBOARD_COLUMNS", "REPORT_FILES", "corruption_error_figure", "dataset_figure", "leaderboard",
           "load_results", "write_report"]

REPORT_FILES = ("report.md", "leaderboard.csv", "accuracy_vs_severity.png", "radar_top1.png", "radar_ce.png",
                "mce_per_corruption.png")
LEADERBOARD_COLUMNS = ("model", "mce", "clean_err", "rel_mce", "mean_err", "clean_acc", "corrupted_acc")
_FIGURE_TITLES = {
    "accuracy_vs_severity.png": "Accuracy against severity",
    "radar_top1.png": "Clean top-1 accuracy per dataset",
    "radar_ce.png": "Corruption error per dataset",
    "mce_per_corruption.png": "Corruption error per corruption",
}


def load_results(results: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Long-format results from a frame or a ``.parquet`` or ``.csv`` file, with their columns checked.

    Args:
        results: A frame with the columns of :data:`~hf_robustmed.metrics.RESULT_COLUMNS`, or the path of one.

    Returns:
        The frame.

    Raises:
        ValueError: If the file is missing or neither Parquet nor CSV, or columns are missing (named).
    """
    if not isinstance(results, pd.DataFrame):
        path = Path(results)
        readers = {".parquet": pd.read_parquet, ".csv": pd.read_csv}
        if path.suffix.lower() not in readers:
            raise ValueError(f"results must be a DataFrame or a .parquet or .csv file, got {path}")
        if not path.is_file():
            raise ValueError(f"results file not found: {path}")
        results = readers[path.suffix.lower()](path)
    _require_columns(results, RESULT_COLUMNS, "results")
    return results


# --------------------------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scores:
    """What the report shows. The frames have rows datasets (first-seen order), columns models (by mCE)."""

    reference: str
    table: pd.DataFrame  # mce_table, sorted by mCE
    accuracy: pd.Series  # % by (model, dataset, corruption, severity)
    clean: pd.DataFrame  # clean accuracy, %
    corrupted: pd.DataFrame  # mean corrupted accuracy, %
    mce: pd.DataFrame  # mCE, reference = 100

    @property
    def models(self) -> list[str]:
        return list(self.table.index)

    @property
    def datasets(self) -> list[str]:
        return list(self.clean.index)


def _accuracies(results: pd.DataFrame) -> pd.Series:
    rows = results[results["metric"] == "accuracy"]
    index = pd.MultiIndex.from_arrays(
        [rows["model"].astype(str), rows["dataset"].astype(str), rows["corruption"].astype(str),
         rows["severity"].astype(int)], names=["model", "dataset", "corruption", "severity"])
    return pd.Series(100 * rows["value"].to_numpy(dtype=float), index=index, name="accuracy")


def _scores(results: pd.DataFrame, reference: str, collections: Mapping[str, Sequence[str]] | None) -> _Scores:
    table = mce_table(results, reference, collections).sort_values("mce", kind="stable")  # validates the cells
    accuracy = _accuracies(results)
    models, datasets = list(table.index), list(pd.unique(accuracy.index.get_level_values("dataset")))
    is_clean = accuracy.index.get_level_values("corruption") == CLEAN

    def by_dataset(values: pd.Series) -> pd.DataFrame:
        means = values.groupby(level=["dataset", "model"]).mean().unstack("model")
        return means.reindex(index=datasets, columns=models)

    mce = table[[f"mce/{d}" for d in datasets]].T.set_axis(datasets, axis=0)
    return _Scores(reference, table, accuracy, by_dataset(accuracy[is_clean]), by_dataset(accuracy[~is_clean]), mce)


def _leaderboard(scores: _Scores) -> pd.DataFrame:
    frame = scores.table[["mce", "clean_err", "rel_mce", "mean_err"]].copy()
    frame["clean_acc"], frame["corrupted_acc"] = scores.clean.mean(), scores.corrupted.mean()
    return frame.reset_index()[list(LEADERBOARD_COLUMNS)]


def _modality_groups(modalities: Mapping[str, str], datasets: Sequence[str]) -> dict[str, list[str]]:
    unknown = [d for d in modalities if d not in datasets]
    if unknown:
        raise ValueError(f"modalities name dataset(s) not in the results: {', '.join(unknown)}")
    groups: dict[str, list[str]] = {}
    for dataset in datasets:
        if dataset in modalities:
            groups.setdefault(modalities[dataset], []).append(dataset)
    return groups


def _corruption_ce(results: pd.DataFrame, scores: _Scores) -> pd.DataFrame:
    """CE per corruption averaged over the datasets that have it: rows corruptions, columns models."""
    corruptions = pd.unique(scores.accuracy.index.get_level_values("corruption"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # mce_table has warned about the same ratios
        ce = {m: corruption_errors(results, m, scores.reference).groupby("corruption")["ce"].mean()
              for m in scores.models}
    return pd.DataFrame(ce).reindex([c for c in corruptions if c != CLEAN])


# --------------------------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], labels: int = 1) -> str:
    """A Markdown table whose first ``labels`` columns align left and the others (numbers) right."""
    rule = ["---"] * labels + ["---:"] * (len(header) - labels)
    return "\n".join("| " + " | ".join(map(str, cells)) + " |" for cells in [header, rule, *rows])


def _header(scores: _Scores) -> str:
    excluded = scores.table.iloc[0]  # the reference's undefined denominators: the same in every row
    pairs = scores.accuracy.index.droplevel(["model", "severity"]).unique()
    lines = [
        f"Reference model: `{scores.reference}`. Clean error, mCE and relative mCE are normalised so that it scores "
        "100 (lower is better); accuracies are top-1, in percent, unweighted means over datasets.",
        f"{len(scores.models)} models, {len(scores.datasets)} datasets, "
        f"{int((pairs.get_level_values('corruption') != CLEAN).sum())} dataset/corruption pairs.",
        f"Ratios the reference leaves undefined (zero error, or no drop for relative CE), left out of the means: "
        f"{int(excluded['excluded_ce'])} CE, {int(excluded['excluded_rel_ce'])} relative CE, "
        f"{int(excluded['excluded_clean_err'])} clean error.",
    ]
    return "# Robustness report\n\n" + "\n".join(f"- {line}" for line in lines)


def _headline(leaderboard: pd.DataFrame) -> str:
    header = ["model", "clean error", "mCE", "relative mCE", "clean acc.", "corrupted acc."]
    rows = [[row.model, *map(_number, (row.clean_err, row.mce, row.rel_mce, row.clean_acc, row.corrupted_acc))]
            for row in leaderboard.itertuples()]
    return "## Leaderboard\n\n" + _table(header, rows)


def _group_section(title: str, label: str, groups: Mapping[str, Sequence[str]], scores: _Scores,
                   members: bool) -> str:
    """Clean accuracy and mCE per group of datasets (means over its datasets), one table each."""
    parts = [f"## {title}"]
    for what, frame in (("Clean top-1 accuracy (%)", scores.clean), ("mCE (reference = 100)", scores.mce)):
        means = {name: frame.loc[list(datasets)].mean() for name, datasets in groups.items()}
        header = [label, *(["datasets"] if members else []), *scores.models]
        rows = [[name, *([", ".join(groups[name])] if members else []), *map(_number, row[scores.models])]
                for name, row in means.items()]
        parts += [f"{what}:", _table(header, rows, labels=2 if members else 1)]
    return "\n\n".join(parts)


def _corruption_section(scores: _Scores) -> str:
    parts = ["## Accuracy per corruption and severity (%)"]
    for dataset in scores.datasets:
        cells = scores.accuracy.xs(dataset, level="dataset")
        cells = cells[cells.index.get_level_values("corruption") != CLEAN]
        corruptions = pd.unique(cells.index.get_level_values("corruption"))
        grid = cells.unstack("severity")
        rows = [[c, m, *map(_number, grid.loc[(m, c)]), _number(grid.loc[(m, c)].mean())]
                for c in corruptions for m in scores.models]
        header = ["corruption", "model", *(f"severity {s}" for s in grid.columns), "mean"]
        parts += [f"### {dataset}", _table(header, rows, labels=2)]
    return "\n\n".join(parts)


def _markdown(scores: _Scores, leaderboard: pd.DataFrame, collections: Mapping[str, Sequence[str]],
              modalities: Mapping[str, Sequence[str]]) -> str:
    parts = [_header(scores), _headline(leaderboard),
             _group_section("Per dataset", "dataset", {d: [d] for d in scores.datasets}, scores, members=False)]
    for title, label, groups in (("Per collection", "collection", collections),
                                 ("Per modality", "modality", modalities)):
        if groups:
            parts.append(_group_section(title, label, groups, scores, members=True))
    parts.append(_corruption_section(scores))
    parts.append("## Figures\n\n" + "\n\n".join(f"![{title}]({name})" for name, title in _FIGURE_TITLES.items()))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------------------------


def _severity_figure(scores: _Scores) -> Figure:
    """Mean accuracy over corruptions against severity (0 = clean): one subplot per dataset, one line per model."""
    curves = scores.accuracy.groupby(level=["model", "dataset", "severity"]).mean()
    datasets, columns = scores.datasets, min(4, len(scores.datasets))
    fig = _new_figure(figsize=(3.2 * columns, 2.6 * -(-len(datasets) // columns) + 0.8), layout="constrained")
    axes = fig.subplots(-(-len(datasets) // columns), columns, sharey=True, squeeze=False).ravel()
    for ax, dataset in zip(axes, datasets):
        for model, colour in zip(scores.models, _colours(len(scores.models))):
            line = curves.loc[(model, dataset)]
            ax.plot(line.index, line.to_numpy(), marker="o", markersize=3, color=colour, label=model)
        ax.set_title(dataset, fontsize="medium")
        ax.set_xticks(sorted(curves.index.unique("severity")))
        ax.grid(alpha=0.3)
    for ax in axes[len(datasets):]:
        fig.delaxes(ax)
    fig.supxlabel("severity (0 = clean)")
    fig.supylabel("mean top-1 accuracy over corruptions (%)")
    fig.suptitle("Accuracy against corruption severity")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize="small")
    return fig


def _grouped_bars(ax: Axes, values: pd.DataFrame) -> None:
    """One group of bars per row of ``values``, one bar (colour) per column."""
    x, width = np.arange(len(values.index)), 0.8 / values.shape[1]
    for i, ((model, column), colour) in enumerate(zip(values.items(), _colours(values.shape[1]))):
        ax.bar(x + (i - (values.shape[1] - 1) / 2) * width, column.to_numpy(dtype=float), width, color=colour,
               label=model)
    ax.set_xticks(x, labels=list(values.index), rotation=30 if len(values.index) > 3 else 0,
                  ha="right" if len(values.index) > 3 else "center")
    ax.grid(axis="y", alpha=0.3)


def _radar(fig: Figure, values: pd.DataFrame) -> Axes:
    angles = np.linspace(0, 2 * np.pi, len(values.index), endpoint=False)
    closed = np.r_[angles, angles[:1]]
    ax = fig.add_subplot(projection="polar")
    for (model, column), colour in zip(values.items(), _colours(values.shape[1])):
        radii = column.to_numpy(dtype=float)
        ax.plot(closed, np.r_[radii, radii[:1]], color=colour, linewidth=1.5, label=model)
        if np.isfinite(radii).all():
            ax.fill(closed, np.r_[radii, radii[:1]], color=colour, alpha=0.08)
    ax.set_xticks(angles, labels=list(values.index))
    for text, cos in zip(ax.get_xticklabels(), np.cos(angles)):  # labels grow away from the circle
        text.set_horizontalalignment("left" if cos > 0.1 else "right" if cos < -0.1 else "center")
    ax.set_rlabel_position(np.degrees(np.pi / len(angles)))  # between the first two axes
    ax.set_ylim(bottom=0)
    return ax


def dataset_figure(values: pd.DataFrame, *, title: str, label: str) -> Figure:
    """One value per dataset and model: a radar chart (the paper's Figure 5D), or grouped bars under 3 datasets.

    Args:
        values: Rows datasets (the radar's axes, or the bar groups), columns models (polygons, or bars).
        title: Heading.
        label: What the values are (the bar chart's y label; in the radar's title).

    Returns:
        The figure; its only axes are polar for a radar chart.

    Raises:
        ImportError: If matplotlib is not installed.
    """
    radar = len(values.index) >= 3
    fig = _new_figure(figsize=(7.2, 5.6) if radar else (6.4, 4.2), layout="constrained")
    if radar:
        ax = _radar(fig, values)
        ax.set_title(f"{title}\n{label}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize="small")
    else:
        ax = fig.add_subplot()
        _grouped_bars(ax, values)
        ax.set(title=title, ylabel=label)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def _corruption_figure(ce: pd.DataFrame) -> Figure:
    """CE per corruption, averaged over the datasets that have it, as grouped bars per model."""
    fig = _new_figure(figsize=(min(24.0, max(6.4, len(ce) * (0.2 * ce.shape[1] + 0.4))), 4.4), layout="constrained")
    ax = fig.add_subplot()
    _grouped_bars(ax, ce)
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set(title="Corruption error per corruption (mean over datasets)", ylabel="CE (reference = 1)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def _figures(results: pd.DataFrame, scores: _Scores) -> dict[str, Figure]:
    return {
        "accuracy_vs_severity.png": _severity_figure(scores),
        "radar_top1.png": dataset_figure(scores.clean, title="Top-1 accuracy on clean data",
                                         label="top-1 accuracy (%)"),
        "radar_ce.png": dataset_figure(scores.mce / 100, title="Corruption error per dataset",
                                       label=f"CE = mCE / 100 ({scores.reference} = 1)"),
        "mce_per_corruption.png": _corruption_figure(_corruption_ce(results, scores)),
    }


# --------------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------------


def leaderboard(results: pd.DataFrame | str | os.PathLike, reference: str = "clip-vit-b16",
                collections: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """The leaderboard of :func:`write_report` (its ``leaderboard.csv``): one row per model, sorted by mCE.

    Args:
        results: Long-format results, or a ``.parquet`` or ``.csv`` file of them (see :func:`load_results`).
        reference: The model the errors are normalised by (it scores 100).
        collections: Named lists of datasets, checked as in :func:`~hf_robustmed.metrics.mce_table`.

    Returns:
        A frame with the columns :data:`LEADERBOARD_COLUMNS`.

    Raises:
        ValueError: As :func:`~hf_robustmed.metrics.mce_table` (missing reference, columns or cells).
    """
    return _leaderboard(_scores(load_results(results), reference, collections))


def corruption_error_figure(results: pd.DataFrame | str | os.PathLike, reference: str = "clip-vit-b16") -> Figure:
    """The report's ``mce_per_corruption.png``: CE per corruption (mean over the datasets that have it), per model.

    Args:
        results: Long-format results, or a ``.parquet`` or ``.csv`` file of them (see :func:`load_results`).
        reference: The model the errors are normalised by (its CE is 1).

    Returns:
        The matplotlib figure (grouped bars, the reference's level drawn as a dashed line).

    Raises:
        ValueError: As :func:`~hf_robustmed.metrics.mce_table`.
        ImportError: If matplotlib is not installed.
    """
    results = load_results(results)
    return _corruption_figure(_corruption_ce(results, _scores(results, reference, None)))


def write_report(results: pd.DataFrame | str | os.PathLike, out_dir: str | os.PathLike, *,
                 reference: str = "clip-vit-b16", collections: dict[str, list[str]] | None = None,
                 modalities: dict[str, str] | None = None) -> Path:
    """Writes the robustness report of evaluation results: the files of :data:`REPORT_FILES`, each atomically.

    ``report.md`` has the leaderboard (clean error, mCE, relative mCE, clean and corrupted accuracy), clean accuracy
    and mCE per dataset (and per collection and modality when given), accuracy per corruption and severity (one
    table per dataset), and the figures. ``leaderboard.csv`` has one row per model, sorted by mCE, with columns
    :data:`LEADERBOARD_COLUMNS`. The figures: mean accuracy against severity per dataset, radar charts of clean
    top-1 accuracy and CE per dataset (grouped bars under 3 datasets), and CE per corruption.

    Args:
        results: Long-format results (:data:`~hf_robustmed.metrics.RESULT_COLUMNS`), or a ``.parquet`` or
            ``.csv`` file of them; the ``accuracy`` rows are used.
        out_dir: Folder to write into; created if missing.
        reference: The model the errors are normalised by.
        collections: Named lists of datasets (e.g. MedMNIST-C, MediMeta-C) to average over.
        modalities: Dataset → imaging modality, to average over the datasets of each modality; datasets left out
            of it are left out of that table only.

    Returns:
        The path of ``report.md``; the other files lie beside it.

    Raises:
        ValueError: If the results lack columns, the reference or cells (see
            :func:`~hf_robustmed.metrics.mce_table`), or a collection or modality names an unknown dataset.
        ImportError: If matplotlib is not installed (nothing is written then).
    """
    results = load_results(results)
    scores = _scores(results, reference, collections)
    modality_groups = _modality_groups(modalities or {}, scores.datasets)
    figures = _figures(results, scores)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    leaderboard = _leaderboard(scores)
    with atomic_path(out_dir / "leaderboard.csv") as tmp:
        leaderboard.to_csv(tmp, index=False)
    for name, fig in figures.items():
        save_figure(fig, out_dir / name)
    path = out_dir / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text(_markdown(scores, leaderboard, collections or {}, modality_groups), encoding="utf-8")
    return path
