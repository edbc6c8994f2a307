"""The robustness report of evaluation results: Markdown tables, figures and a leaderboard, laid out like "On the
Robustness of Medical Vision-Language Models" (Imam et al. 2025).

>>> from hf_robustmed.report import write_report
>>> write_report("results.parquet", "report/", modalities={"bloodmnist": "microscopy", "chestmnist": "X-ray"})
PosixPath('report/report.md')

Accuracies are top-1, in percent. Clean error, mCE and relative mCE are those of
:func:`hf_robustmed.metrics.mce_table`: normalised so that the reference model scores 100; the charts show the
corruption error CE = mCE / 100. Every mean over datasets is unweighted, and a dataset's corrupted accuracy is the
mean over its corruptions and severities. The figures need matplotlib (``pip install hf-robustmed[viz]``).

Every mCE and relative mCE comes with the number of (dataset, corruption) pairs it rests on (those whose reference
denominator is defined); one resting on under half of its pairs is shown as ``n/a`` (NaN in ``leaderboard.csv``),
never headlined. Models evaluated with stand-in weights (a ``weights`` column of the results, written by
``hf-robustmed evaluate``) are marked "(stand-in)" in every table, legend and title; results without that column
(older runs) show their weights as ``unknown``.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .figures import colours, new_figure, render_png
from .files import atomic_path
from .metrics import (
    CLEAN,
    RESULT_COLUMNS,
    UndefinedMetricWarning,
    corruption_errors,
    mce_table,
    require_columns,
    well_covered,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "LEADERBOARD_COLUMNS",
    "REPORT_FILES",
    "corruption_error_figure",
    "covered_scores",
    "dataset_error_figure",
    "dataset_figure",
    "leaderboard",
    "load_results",
    "model_label",
    "model_weights",
    "pairs_text",
    "write_report",
]

REPORT_FILES = (
    "report.md",
    "leaderboard.csv",
    "accuracy_vs_severity.png",
    "radar_top1.png",
    "radar_ce.png",
    "mce_per_corruption.png",
)
LEADERBOARD_COLUMNS = (
    "model",
    "weights",
    "mce",
    "clean_err",
    "rel_mce",
    "mean_err",
    "clean_acc",
    "corrupted_acc",
    "pairs",
    "ce_pairs",
    "rel_ce_pairs",
)
WEIGHTS_COLUMN = "weights"  # written by hf-robustmed evaluate from each model's provenance["weights"]
STANDIN, UNKNOWN = "stand-in", "unknown"
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
    require_columns(results, RESULT_COLUMNS, "results")
    return results


def model_weights(results: pd.DataFrame) -> dict[str, str]:
    """Per model (first-seen order), where its weights came from: ``stand-in``, ``pretrained`` or ``unknown``.

    ``unknown`` for results without a ``weights`` column (written before it existed) or with no value for the
    model; a model with any stand-in row is a stand-in.
    """
    models = [str(m) for m in pd.unique(results["model"].astype(str))]
    if WEIGHTS_COLUMN not in results.columns:
        return dict.fromkeys(models, UNKNOWN)
    kinds = results.groupby(results["model"].astype(str))[WEIGHTS_COLUMN].agg(
        lambda values: set(values.dropna().astype(str))
    )
    return {
        m: STANDIN if STANDIN in kinds[m] else next(iter(kinds[m])) if len(kinds[m]) == 1 else UNKNOWN for m in models
    }


def model_label(model: str, weights: str | None) -> str:
    """How a model is named in tables and figures: ``"biomedclip (stand-in)"`` for stand-in weights."""
    return f"{model} (stand-in)" if weights == STANDIN else model


def pairs_text(defined: int, pairs: int) -> str:
    """``"3 of 9"``: how many of a mean's (dataset, corruption) pairs it rests on."""
    return f"{int(defined)} of {int(pairs)}"


def covered_scores(table: pd.DataFrame, score: str, names: Sequence[str]) -> pd.DataFrame:
    """``table[f"{score}/{name}"]`` as a frame (rows ``names``, columns models), NaN where the score rests on under
    half of its pairs (:func:`~hf_robustmed.metrics.well_covered`)."""
    count = "ce_pairs" if score == "mce" else "rel_ce_pairs"
    values = table[[f"{score}/{n}" for n in names]].T.set_axis(list(names), axis=0)
    covered = [well_covered(table[f"{count}/{n}"].iloc[0], table[f"pairs/{n}"].iloc[0]) for n in names]
    return values.where(pd.Series(covered, index=list(names)), axis=0)


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
    mce: pd.DataFrame  # mCE, reference = 100 (all values; see covered_scores)
    weights: dict[str, str]  # model → stand-in / pretrained / unknown

    @property
    def models(self) -> list[str]:
        return list(self.table.index)

    def label(self, model: str) -> str:
        """The model's name as shown: marked when its weights are a stand-in."""
        return model_label(model, self.weights.get(model))

    @property
    def standins(self) -> list[str]:
        return [m for m in self.models if self.weights.get(m) == STANDIN]

    def title(self, text: str) -> str:
        """A figure title, marked when stand-in weights are in it."""
        return f"{text}\n(stand-in weights: {', '.join(self.standins)})" if self.standins else text

    @property
    def datasets(self) -> list[str]:
        return list(self.clean.index)


def _accuracies(results: pd.DataFrame) -> pd.Series:
    rows = results[results["metric"] == "accuracy"]
    index = pd.MultiIndex.from_arrays(
        [
            rows["model"].astype(str),
            rows["dataset"].astype(str),
            rows["corruption"].astype(str),
            rows["severity"].astype(int),
        ],
        names=["model", "dataset", "corruption", "severity"],
    )
    return pd.Series(100 * rows["value"].to_numpy(dtype=float), index=index, name="accuracy")


_UNDEFINED = re.compile(r"^(?P<what>.+?) undefined for (?P<cells>.+) (?P<why>\(reference .+)$", re.S)
UNDEFINED_SHOWN = 3  # cells named in a condensed UndefinedMetricWarning


def condense_undefined(messages: Sequence[str]) -> list[str]:
    """One short message per cause of :class:`~hf_robustmed.metrics.UndefinedMetricWarning`, with a count.

    ``mce_table`` names every undefined cell; a report over a benchmark can have hundreds. Each cause (CE,
    relative CE, clean error) becomes ``"<what> undefined for a, b, c and N-3 more (N cells in all; reference …:
    why)…"``.
    Messages of another form are kept as they are, once each.

    Args:
        messages: The warnings' texts, in the order they were raised.

    Returns:
        The condensed texts, one per distinct cause, in first-seen order.
    """
    condensed: dict[str, str] = {}
    for message in messages:
        match = _UNDEFINED.match(message)
        if not match:
            condensed.setdefault(message, message)
            continue
        cells = [c for c in re.split(r", | and (?=\d+ more$)", match["cells"]) if c]
        shown = ", ".join(cells[:UNDEFINED_SHOWN]) + (
            f" and {len(cells) - UNDEFINED_SHOWN} more" if len(cells) > UNDEFINED_SHOWN else ""
        )
        count = f"{len(cells)} cell{'s' if len(cells) > 1 else ''} in all"
        condensed.setdefault(match["what"], f"{match['what']} undefined for {shown} ({count}; {match['why'][1:]}")
    return list(condensed.values())


@contextlib.contextmanager
def _undefined_once() -> Iterator[None]:
    """Collects the :class:`UndefinedMetricWarning` raised inside and re-raises them condensed, one per cause."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UndefinedMetricWarning)
        yield
    undefined = []
    for warning in caught:
        if issubclass(warning.category, UndefinedMetricWarning):
            undefined.append(str(warning.message))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    for message in condense_undefined(undefined):
        warnings.warn(message, UndefinedMetricWarning, stacklevel=4)


def _scores(results: pd.DataFrame, reference: str, collections: Mapping[str, Sequence[str]] | None) -> _Scores:
    with _undefined_once():
        table = mce_table(results, reference, collections).sort_values("mce", kind="stable")  # validates the cells
    accuracy = _accuracies(results)
    models, datasets = list(table.index), list(pd.unique(accuracy.index.get_level_values("dataset")))
    is_clean = accuracy.index.get_level_values("corruption") == CLEAN

    def by_dataset(values: pd.Series) -> pd.DataFrame:
        means = values.groupby(level=["dataset", "model"]).mean().unstack("model")
        return means.reindex(index=datasets, columns=models)

    mce = table[[f"mce/{d}" for d in datasets]].T.set_axis(datasets, axis=0)
    return _Scores(
        reference,
        table,
        accuracy,
        by_dataset(accuracy[is_clean]),
        by_dataset(accuracy[~is_clean]),
        mce,
        model_weights(results),
    )


def _leaderboard(scores: _Scores) -> pd.DataFrame:
    """The headline row per model; an mCE or relative mCE resting on under half of its pairs is NaN."""
    frame = scores.table[["mce", "clean_err", "rel_mce", "mean_err", "pairs", "ce_pairs", "rel_ce_pairs"]].copy()
    for score, count in (("mce", "ce_pairs"), ("rel_mce", "rel_ce_pairs")):
        covered = [well_covered(d, p) for d, p in zip(frame[count], frame["pairs"], strict=True)]
        frame[score] = frame[score].where(covered)
    frame["clean_acc"], frame["corrupted_acc"] = scores.clean.mean(), scores.corrupted.mean()
    frame["weights"] = [scores.weights.get(m, UNKNOWN) for m in frame.index]
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
        ce = {
            m: corruption_errors(results, m, scores.reference).groupby("corruption")["ce"].mean() for m in scores.models
        }
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


def _weights_line(scores: _Scores) -> str:
    if scores.standins:
        return (
            f"**Stand-in weights**: {', '.join(f'`{m}`' for m in scores.standins)} ran on tiny randomly "
            'initialised stand-ins (marked "(stand-in)"), not the real models: their numbers mean nothing.'
        )
    unknown = [m for m in scores.models if scores.weights.get(m) == UNKNOWN]
    if unknown:
        return (
            f"Weights of {', '.join(f'`{m}`' for m in unknown)}: unknown (these results do not record whether "
            "real or stand-in weights were used)."
        )
    return "Weights: every model's pretrained weights."


def _header(scores: _Scores) -> str:
    first = scores.table.iloc[0]  # the reference's undefined denominators: the same in every row
    pairs = int(first["pairs"])
    lines = [
        _weights_line(scores),
        f"Reference model: `{scores.reference}`. Clean error, mCE and relative mCE are normalised so that it scores "
        "100 (lower is better); accuracies are top-1, in percent, unweighted means over datasets.",
        f"{len(scores.models)} models, {len(scores.datasets)} datasets, {pairs} dataset/corruption pairs: mCE rests "
        f"on the {pairs_text(first['ce_pairs'], pairs)} pairs whose CE is defined, relative mCE on "
        f"{pairs_text(first['rel_ce_pairs'], pairs)}; a figure resting on under half of its pairs is shown as n/a.",
        f"Ratios the reference leaves undefined (zero error, or no drop for relative CE), left out of the means: "
        f"{int(first['excluded_ce'])} CE, {int(first['excluded_rel_ce'])} relative CE, "
        f"{int(first['excluded_clean_err'])} clean error.",
    ]
    return "# Robustness report\n\n" + "\n".join(f"- {line}" for line in lines)


def _covered_number(value: float, defined: int, pairs: int) -> str:
    """``"87.3 (3 of 4)"``, or ``"n/a (1 of 9)"`` when the mean rests on under half of its pairs."""
    shown = _number(value) if well_covered(defined, pairs) else "n/a"
    return f"{shown} ({pairs_text(defined, pairs)})"


def _headline(scores: _Scores, leaderboard: pd.DataFrame) -> str:
    header = ["model", "weights", "clean error", "mCE (pairs)", "relative mCE (pairs)", "clean acc.", "corrupted acc."]
    rows = [
        [
            scores.label(row.model),
            row.weights,
            _number(row.clean_err),
            _covered_number(row.mce, row.ce_pairs, row.pairs),
            _covered_number(row.rel_mce, row.rel_ce_pairs, row.pairs),
            _number(row.clean_acc),
            _number(row.corrupted_acc),
        ]
        for row in leaderboard.itertuples()
    ]
    return "## Leaderboard\n\n" + _table(header, rows, labels=2)


def _group_pairs(scores: _Scores, datasets: Sequence[str]) -> tuple[int, int]:
    """(pairs with a defined CE, all pairs) of a group of datasets."""
    first = scores.table.iloc[0]
    return (sum(int(first[f"ce_pairs/{d}"]) for d in datasets), sum(int(first[f"pairs/{d}"]) for d in datasets))


def _group_section(title: str, label: str, groups: Mapping[str, Sequence[str]], scores: _Scores, members: bool) -> str:
    """Clean accuracy and mCE per group of datasets (means over its datasets), one table each; the mCE table says
    how many pairs each row rests on, and shows n/a under half."""
    parts = [f"## {title}"]
    labels = [scores.label(m) for m in scores.models]
    for what, frame in (("Clean top-1 accuracy (%)", scores.clean), ("mCE (reference = 100)", scores.mce)):
        means = {name: frame.loc[list(datasets)].mean() for name, datasets in groups.items()}
        is_mce = frame is scores.mce
        header = [label, *(["datasets"] if members else []), *(["pairs"] if is_mce else []), *labels]
        rows = []
        for name, row in means.items():
            defined, pairs = _group_pairs(scores, groups[name])
            shown = row[scores.models] if not is_mce or well_covered(defined, pairs) else row[scores.models] * np.nan
            rows.append(
                [
                    name,
                    *([", ".join(groups[name])] if members else []),
                    *([pairs_text(defined, pairs)] if is_mce else []),
                    *map(_number, shown),
                ]
            )
        parts += [f"{what}:", _table(header, rows, labels=(2 if members else 1) + is_mce)]
    return "\n\n".join(parts)


def _corruption_section(scores: _Scores) -> str:
    parts = ["## Accuracy per corruption and severity (%)"]
    for dataset in scores.datasets:
        cells = scores.accuracy.xs(dataset, level="dataset")
        cells = cells[cells.index.get_level_values("corruption") != CLEAN]
        corruptions = pd.unique(cells.index.get_level_values("corruption"))
        grid = cells.unstack("severity")
        rows = [
            [c, scores.label(m), *map(_number, grid.loc[(m, c)]), _number(grid.loc[(m, c)].mean())]
            for c in corruptions
            for m in scores.models
        ]
        header = ["corruption", "model", *(f"severity {s}" for s in grid.columns), "mean"]
        parts += [f"### {dataset}", _table(header, rows, labels=2)]
    return "\n\n".join(parts)


def _markdown(
    scores: _Scores,
    leaderboard: pd.DataFrame,
    collections: Mapping[str, Sequence[str]],
    modalities: Mapping[str, Sequence[str]],
) -> str:
    parts = [
        _header(scores),
        _headline(scores, leaderboard),
        _group_section("Per dataset", "dataset", {d: [d] for d in scores.datasets}, scores, members=False),
    ]
    for title, label, groups in (
        ("Per collection", "collection", collections),
        ("Per modality", "modality", modalities),
    ):
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
    fig = new_figure(figsize=(3.2 * columns, 2.6 * -(-len(datasets) // columns) + 0.8), layout="constrained")
    axes = fig.subplots(-(-len(datasets) // columns), columns, sharey=True, squeeze=False).ravel()
    for ax, dataset in zip(axes, datasets, strict=False):
        for model, colour in zip(scores.models, colours(len(scores.models)), strict=True):
            line = curves.loc[(model, dataset)]
            ax.plot(line.index, line.to_numpy(), marker="o", markersize=3, color=colour, label=scores.label(model))
        ax.set_title(dataset, fontsize="medium")
        ax.set_xticks(sorted(curves.index.unique("severity")))
        ax.grid(alpha=0.3)
    for ax in axes[len(datasets) :]:
        fig.delaxes(ax)
    fig.supxlabel("severity (0 = clean)")
    fig.supylabel("mean top-1 accuracy over corruptions (%)")
    fig.suptitle(scores.title("Accuracy against corruption severity"))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize="small")
    return fig


def _grouped_bars(ax: Axes, values: pd.DataFrame) -> None:
    """One group of bars per row of ``values``, one bar (colour) per column."""
    x, width = np.arange(len(values.index)), 0.8 / values.shape[1]
    for i, ((model, column), colour) in enumerate(zip(values.items(), colours(values.shape[1]), strict=True)):
        ax.bar(
            x + (i - (values.shape[1] - 1) / 2) * width, column.to_numpy(dtype=float), width, color=colour, label=model
        )
    ax.set_xticks(
        x,
        labels=list(values.index),
        rotation=30 if len(values.index) > 3 else 0,
        ha="right" if len(values.index) > 3 else "center",
    )
    ax.grid(axis="y", alpha=0.3)


def _radar(fig: Figure, values: pd.DataFrame) -> Axes:
    angles = np.linspace(0, 2 * np.pi, len(values.index), endpoint=False)
    closed = np.r_[angles, angles[:1]]
    ax = fig.add_subplot(projection="polar")
    for (model, column), colour in zip(values.items(), colours(values.shape[1]), strict=True):
        radii = column.to_numpy(dtype=float)
        ax.plot(closed, np.r_[radii, radii[:1]], color=colour, linewidth=1.5, label=model)
        if np.isfinite(radii).all():
            ax.fill(closed, np.r_[radii, radii[:1]], color=colour, alpha=0.08)
    ax.set_xticks(angles, labels=list(values.index))
    for text, cos in zip(ax.get_xticklabels(), np.cos(angles), strict=True):  # labels grow away from the circle
        text.set_horizontalalignment("left" if cos > 0.1 else "right" if cos < -0.1 else "center")
    ax.set_rlabel_position(np.degrees(np.pi / len(angles)))  # between the first two axes
    ax.set_ylim(bottom=0)
    return ax


MIN_RADAR_AXES = 5  # under five datasets a radar is a triangle or a square that reads worse than bars


def dataset_figure(values: pd.DataFrame, *, title: str, label: str) -> Figure:
    """One value per dataset and model: a radar chart (the paper's Figure 5D) from :data:`MIN_RADAR_AXES` datasets
    on, grouped bars under that.

    Args:
        values: Rows datasets (the radar's axes, or the bar groups), columns models (polygons, or bars).
        title: Heading.
        label: What the values are and their unit: the value axis's label (the radar's radial axis).

    Returns:
        The figure; its only axes are polar for a radar chart.

    Raises:
        ImportError: If matplotlib is not installed.
    """
    radar = len(values.index) >= MIN_RADAR_AXES
    fig = new_figure(figsize=(7.2, 5.6) if radar else (6.4, 4.2), layout="constrained")
    if radar:
        ax = _radar(fig, values)
        ax.set_title(title, pad=18)
        ax.text(
            np.pi / len(values.index),
            ax.get_rmax() * 1.1,
            label,
            ha="center",
            va="bottom",
            fontsize="small",
            color="0.35",
        )  # the radial axis's label, beside its tick labels
        ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize="small")
    else:
        ax = fig.add_subplot()
        _grouped_bars(ax, values)
        ax.set(title=title, ylabel=label)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def _corruption_figure(ce: pd.DataFrame, title: str = "Corruption error per corruption (mean over datasets)") -> Figure:
    """CE per corruption, averaged over the datasets that have it, as grouped bars per model."""
    fig = new_figure(figsize=(min(24.0, max(6.4, len(ce) * (0.2 * ce.shape[1] + 0.4))), 4.4), layout="constrained")
    ax = fig.add_subplot()
    _grouped_bars(ax, ce)
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set(title=title, ylabel="CE (reference = 1)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def _ce_by_dataset(scores: _Scores) -> pd.DataFrame:
    """CE = mCE / 100 per dataset (rows ``"dataset (k of n)"`` when some pairs are undefined; NaN under half),
    columns model labels."""
    ce = covered_scores(scores.table, "mce", scores.datasets) / 100
    first = scores.table.iloc[0]
    rows = [
        d
        if first[f"ce_pairs/{d}"] == first[f"pairs/{d}"]
        else f"{d} ({pairs_text(first[f'ce_pairs/{d}'], first[f'pairs/{d}'])})"
        for d in scores.datasets
    ]
    return ce[scores.models].set_axis(rows, axis=0).rename(columns=scores.label)


def _figures(results: pd.DataFrame, scores: _Scores) -> dict[str, Figure]:
    return {
        "accuracy_vs_severity.png": _severity_figure(scores),
        "radar_top1.png": dataset_figure(
            scores.clean.rename(columns=scores.label),
            title=scores.title("Top-1 accuracy on clean data"),
            label="top-1 accuracy (%)",
        ),
        "radar_ce.png": dataset_figure(
            _ce_by_dataset(scores),
            title=scores.title("Corruption error per dataset"),
            label=f"CE = mCE / 100 ({scores.reference} = 1)",
        ),
        "mce_per_corruption.png": _corruption_figure(
            _corruption_ce(results, scores).rename(columns=scores.label),
            scores.title("Corruption error per corruption (mean over datasets)"),
        ),
    }


# --------------------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------------------


def leaderboard(
    results: pd.DataFrame | str | os.PathLike,
    reference: str = "clip-vit-b16",
    collections: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The leaderboard of :func:`write_report` (its ``leaderboard.csv``): one row per model, sorted by mCE.

    Args:
        results: Long-format results, or a ``.parquet`` or ``.csv`` file of them (see :func:`load_results`).
        reference: The model the errors are normalised by (it scores 100).
        collections: Named lists of datasets, checked as in :func:`~hf_robustmed.metrics.mce_table`.

    Returns:
        A frame with the columns :data:`LEADERBOARD_COLUMNS`: ``weights`` (``stand-in``, ``pretrained`` or
        ``unknown``), the scores, and ``pairs``, ``ce_pairs``, ``rel_ce_pairs``: the (dataset, corruption) pairs in
        all and those mCE and relative mCE rest on. A score resting on under half of its pairs is NaN.

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
    scores = _scores(results, reference, None)
    return _corruption_figure(
        _corruption_ce(results, scores).rename(columns=scores.label),
        scores.title("Corruption error per corruption (mean over datasets)"),
    )


def dataset_error_figure(results: pd.DataFrame | str | os.PathLike, reference: str = "clip-vit-b16") -> Figure:
    """The report's ``radar_ce.png``: CE = mCE / 100 per dataset and model (n/a where it rests on under half of the
    dataset's pairs; stand-ins marked).

    Raises:
        ValueError: As :func:`~hf_robustmed.metrics.mce_table`.
        ImportError: If matplotlib is not installed.
    """
    scores = _scores(load_results(results), reference, None)
    return dataset_figure(
        _ce_by_dataset(scores),
        title=scores.title("Corruption error per dataset"),
        label=f"CE = mCE / 100 ({reference} = 1)",
    )


def write_report(
    results: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    reference: str = "clip-vit-b16",
    collections: dict[str, list[str]] | None = None,
    modalities: dict[str, str] | None = None,
) -> Path:
    """Writes the robustness report of evaluation results: the files of :data:`REPORT_FILES`, all or none.

    ``report.md`` has the leaderboard (clean error, mCE, relative mCE, clean and corrupted accuracy), clean accuracy
    and mCE per dataset (and per collection and modality when given), accuracy per corruption and severity (one
    table per dataset), and the figures. ``leaderboard.csv`` has one row per model, sorted by mCE, with columns
    :data:`LEADERBOARD_COLUMNS`. The figures: mean accuracy against severity per dataset, radar charts of clean
    top-1 accuracy and CE per dataset (grouped bars under :data:`MIN_RADAR_AXES` datasets), and CE per corruption.

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
        OSError: If a file cannot be written (full disk, read-only folder): no file of the report is left, and
            ``out_dir`` is removed again if this call created it.
    """
    results = load_results(results)
    scores = _scores(results, reference, collections)
    modality_groups = _modality_groups(modalities or {}, scores.datasets)
    figures = _figures(results, scores)
    leaderboard = _leaderboard(scores)
    markdown = _markdown(scores, leaderboard, collections or {}, modality_groups)
    writers: dict[str, Callable[[Path], object]] = {
        "leaderboard.csv": lambda tmp: leaderboard.to_csv(tmp, index=False),
        **{name: (lambda tmp, fig=fig: render_png(fig, tmp)) for name, fig in figures.items()},
        "report.md": lambda tmp: tmp.write_text(markdown, encoding="utf-8"),
    }
    out_dir = Path(out_dir)
    _write_all(out_dir, writers)
    return out_dir / "report.md"


def _write_all(out_dir: Path, writers: Mapping[str, Callable[[Path], object]]) -> None:
    """Writes every file to a temporary name first and renames them all only when every write succeeded: a failed
    write (full disk, read-only folder) leaves no file of this report, and removes ``out_dir`` if it made it."""
    made = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.ExitStack() as stack:
            for name, write in writers.items():
                write(stack.enter_context(atomic_path(out_dir / name)))
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
