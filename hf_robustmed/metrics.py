"""Metrics: per-cell classification scores and corruption errors (ImageNet-C mCE, MedMNIST-C balanced error).

Results are kept in long format, one row per cell and metric::

    model  dataset      corruption  severity  metric    value  n
    clip   bloodmnist   clean       0         accuracy  0.91   3421
    clip   bloodmnist   pixelate    1         accuracy  0.88   3421

>>> from hf_robustmed.metrics import mce_table
>>> table = mce_table(results, reference="clip-vit-b16", collections={"MedMNIST-C": ["bloodmnist"]})

A ratio whose denominator is undefined (a reference error of zero) is never replaced by a number: it is NaN, an
:class:`UndefinedMetricWarning` names it, it is left out of every mean, and the tables count how many were left out.
Only numpy and pandas are needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ALEXNET_BASELINES",
    "MIN_PAIR_COVERAGE",
    "RESULT_COLUMNS",
    "UndefinedMetricWarning",
    "accuracy",
    "balanced_accuracy",
    "balanced_error_scores",
    "cell_metrics",
    "corruption_errors",
    "macro_roc_auc",
    "mce_table",
    "require_columns",
    "results_from_predictions",
    "seen_held_out_mce",
    "validate_examples",
    "well_covered",
]

RESULT_COLUMNS = ("model", "dataset", "corruption", "severity", "metric", "value", "n")
CLEAN = "clean"
_CELL = ["dataset", "corruption", "severity"]
_PAIR = ["dataset", "corruption"]
_SCORES = ("clean_err", "mce", "rel_mce", "mean_err")
_COUNTS = ("pairs", "ce_pairs", "rel_ce_pairs")
MIN_PAIR_COVERAGE = 0.5  # a mean resting on fewer of its (dataset, corruption) pairs is not headlined
SEVERITIES = range(1, 6)


class UndefinedMetricWarning(UserWarning):
    """A metric or ratio is undefined for the given data and is reported as NaN."""


def _undefined(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------------------------------
# Per-cell metrics
# --------------------------------------------------------------------------------------------------------------------


def _labels(labels: Sequence[int] | np.ndarray, n: int | None = None) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {array.shape}")
    if n is not None and array.size != n:
        raise ValueError(f"labels and predictions differ in length: {array.size} != {n}")
    return array


def accuracy(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray) -> float:
    """Top-1 accuracy: the fraction of predictions equal to their label.

    Args:
        labels: True class of each example.
        preds: Predicted class of each example.

    Returns:
        The accuracy in [0, 1].
    """
    preds = _labels(preds)
    return float(np.mean(_labels(labels, preds.size) == preds))


def balanced_accuracy(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``labels`` (as scikit-learn's ``balanced_accuracy_score``).

    Args:
        labels: True class of each example.
        preds: Predicted class of each example.

    Returns:
        The balanced accuracy in [0, 1].
    """
    preds = _labels(preds)
    labels = _labels(labels, preds.size)
    return float(np.mean([np.mean(preds[labels == c] == c) for c in np.unique(labels)]))


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of ``scores``, tied values sharing the mean of their ranks."""
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], scores.size]
    group = np.repeat(np.arange(starts.size), ends - starts)
    ranks = np.empty(scores.size)
    ranks[order] = ((starts + 1 + ends) / 2)[group]
    return ranks


def _rank_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the Mann–Whitney U statistic; ties count one half."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    rank_sum = _average_ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_roc_auc(labels: Sequence[int] | np.ndarray, probs: Sequence | np.ndarray) -> float:
    """ROC AUC: binary, or the macro mean of one-vs-rest AUCs.

    Binary when ``probs`` is 1-D (the score of class 1) or has two columns (AUC of column 1). With ``k > 2``
    columns, the AUC of each class that has both positives and negatives in ``labels`` is averaged; classes
    absent from ``labels`` are skipped.

    Args:
        labels: True class of each example, in ``0..k-1``.
        probs: Class scores, shape ``(n,)`` or ``(n, k)``.

    Returns:
        The AUC, or NaN (with an :class:`UndefinedMetricWarning`) when no class has both positives and negatives.

    Raises:
        ValueError: If shapes disagree, scores are not finite or labels fall outside the score columns.
    """
    scores = np.asarray(probs, dtype=float)
    labels = _labels(labels, scores.shape[0] if scores.ndim else None)
    if scores.ndim not in (1, 2) or not np.isfinite(scores).all():
        raise ValueError(f"probs must be a finite (n,) or (n, k) array, got shape {scores.shape}")
    if scores.ndim == 1 or scores.shape[1] == 2:
        columns, scores = [1], scores if scores.ndim == 1 else scores[:, 1]
        scores = scores[:, None]
        n_classes = 2
    else:
        n_classes = scores.shape[1]
        columns = list(range(n_classes))
    if not np.isin(labels, np.arange(n_classes)).all():
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {sorted(set(labels.tolist()))}")
    aucs = []
    for j, c in enumerate(columns):
        positive = labels == c
        if 0 < positive.sum() < positive.size:
            aucs.append(_rank_auc(positive, scores[:, j]))
    if not aucs:
        _undefined(f"ROC AUC is undefined: labels hold a single class ({np.unique(labels).tolist()})")
        return float("nan")
    return float(np.mean(aucs))


def cell_metrics(labels: Sequence[int] | np.ndarray, probs: Sequence | np.ndarray) -> dict[str, float | int]:
    """The scores of one evaluation cell (a dataset, corruption and severity) from class probabilities.

    The prediction is the arg-max class, or ``probs >= 0.5`` for 1-D binary scores.

    Args:
        labels: True class of each example.
        probs: Class scores, shape ``(n,)`` or ``(n, k)``.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``roc_auc``, ``error`` (1 - accuracy) and ``n``.
    """
    scores = np.asarray(probs, dtype=float)
    preds = (scores >= 0.5).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
    acc = accuracy(labels, preds)
    return {
        "accuracy": acc,
        "balanced_accuracy": balanced_accuracy(labels, preds),
        "roc_auc": macro_roc_auc(labels, scores),
        "error": 1.0 - acc,
        "n": int(preds.size),
    }


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and np.isnan(value))


def _as_int(value) -> int | None:
    """``value`` as an int if it is a whole number (``2``, ``np.int64(2)``, ``2.0``), else ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def _shown(value) -> str:
    """A value as written in error messages (NumPy scalars as plain Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _bad(field: str, index: int, value, why: str) -> ValueError:
    return ValueError(f"{field}[{index}] = {_shown(value)}: {why}")


def _numbers(values: Sequence) -> np.ndarray | None:
    """``values`` as floats (``None`` → NaN), or ``None`` when some value is not a number (checked one by one)."""
    if any(isinstance(v, (str, bytes, bool, np.bool_)) for v in values[:1]):
        return None
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None


def _first_bad(values: Sequence, ok: np.ndarray | None, check) -> int | None:
    """Index of the first value failing ``ok`` (vectorised) or, when ``ok`` is ``None``, ``check(value)``."""
    if ok is not None:
        bad = np.flatnonzero(~ok)
        return int(bad[0]) if bad.size else None
    return next((i for i, value in enumerate(values) if not check(value)), None)


def _check_labels(field: str, values: Sequence) -> None:
    numbers = _numbers(values)
    ok = None if numbers is None else np.isfinite(numbers) & (numbers >= 0) & (numbers == np.floor(numbers))
    index = _first_bad(values, ok, lambda v: not _is_missing(v) and (_as_int(v) or 0) >= 0 and _as_int(v) is not None)
    if index is None:
        return
    value = values[index]
    if _is_missing(value):
        raise _bad(field, index, value, "missing; every example needs an integer class index")
    raise _bad(field, index, value, "must be a class index, an integer >= 0")


def _check_names(field: str, values: Sequence) -> None:
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise _bad(field, i, value, "must be a non-empty string")


def _check_severities(field: str, severities: Sequence, corruptions: Sequence | None) -> None:
    for i, value in enumerate(severities):
        number = None if _is_missing(value) else _as_int(value)
        if corruptions is None:
            ok, expected = number is not None and 0 <= number <= 5, "an integer 0..5"
        elif corruptions[i] == CLEAN:
            ok, expected = number == 0, "0 for an example of corruption 'clean'"
        else:
            ok, expected = number in SEVERITIES, f"an integer 1..5 for corruption {corruptions[i]!r}"
        if not ok:
            raise _bad(field, i, value, f"severity must be {expected}")


def validate_examples(
    columns: Mapping[str, Sequence | None],
    *,
    labels: Sequence[str] = ("predictions", "references"),
    names: Sequence[str] = ("model", "dataset", "corruption"),
    severity: str = "severity",
    corruption: str = "corruption",
) -> None:
    """Checks per-example inputs of the mCE, naming the field, the index and the bad value.

    Columns that are absent or ``None`` are skipped (checked where they are given).

    Args:
        columns: Field name → one value per example.
        labels: Fields holding class indices (integers >= 0; ``None``, NaN, 2.5 or -1 are refused).
        names: Fields holding non-empty strings.
        severity: The severity field: an integer 1..5, or 0 for examples of corruption ``clean``.
        corruption: The corruption field, to check severities against.

    Raises:
        ValueError: For columns of different lengths, or the first bad value, e.g.
            ``severity[3] = 2.5: severity must be an integer 1..5 (0 only for corruption 'clean')``.
    """
    given = {name: list(values) for name, values in columns.items() if values is not None}
    lengths = {name: len(values) for name, values in given.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs differ in length: {', '.join(f'{k} {v}' for k, v in lengths.items())}")
    for field in labels:
        if field in given:
            _check_labels(field, given[field])
    for field in names:
        if field in given:
            _check_names(field, given[field])
    if severity in given:
        _check_severities(severity, given[severity], given.get(corruption))


def results_from_predictions(examples: pd.DataFrame) -> pd.DataFrame:
    """Long-format accuracy results from per-example predictions.

    Args:
        examples: One row per example with columns ``model``, ``dataset``, ``corruption``, ``severity``,
            ``reference`` (the label) and ``prediction``.

    Returns:
        One ``accuracy`` row per (model, dataset, corruption, severity), with columns :data:`RESULT_COLUMNS`.

    Raises:
        ValueError: For a missing column, or a bad value (see :func:`validate_examples`).
    """
    keys = ["model", *_CELL]
    require_columns(examples, [*keys, "reference", "prediction"], "examples")
    validate_examples(
        {name: examples[name].tolist() for name in [*keys, "reference", "prediction"]},
        labels=("prediction", "reference"),
    )
    rows = [
        (*key, "accuracy", accuracy(group["reference"], group["prediction"]), len(group))
        for key, group in examples.groupby(keys, sort=False)
    ]
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


# --------------------------------------------------------------------------------------------------------------------
# ImageNet-C corruption errors
# --------------------------------------------------------------------------------------------------------------------


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Checks that ``frame`` has every one of ``columns``.

    Raises:
        ValueError: Naming what ``frame`` is (``what``), the missing columns and the expected ones.
    """
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack column(s) {', '.join(missing)}; expected {', '.join(columns)}")


def _cell_names(index: pd.Index, limit: int = 8) -> str:
    names = ["/".join(map(str, key)) if isinstance(key, tuple) else str(key) for key in index[:limit]]
    return ", ".join(names) + (f" and {len(index) - limit} more" if len(index) > limit else "")


def _errors(results: pd.DataFrame) -> pd.Series:
    """Top-1 errors, 1 - accuracy, indexed by (model, dataset, corruption, severity)."""
    require_columns(results, RESULT_COLUMNS, "results")
    rows = results[results["metric"] == "accuracy"]
    if rows.empty:
        raise ValueError("results hold no 'accuracy' rows")
    keys = ["model", *_CELL]
    index = pd.MultiIndex.from_arrays(
        [
            rows["model"].astype(str),
            rows["dataset"].astype(str),
            rows["corruption"].astype(str),
            rows["severity"].astype(int),
        ],
        names=keys,
    )
    if index.has_duplicates:
        raise ValueError(f"duplicate accuracy rows for {_cell_names(index[index.duplicated()].unique())}")
    bad_clean = index[(index.get_level_values("corruption") == CLEAN) & (index.get_level_values("severity") != 0)]
    if len(bad_clean):
        raise ValueError(f"clean rows must have severity 0: {_cell_names(bad_clean)}")
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)
    bad = ~((values >= 0) & (values <= 1))  # NaN included
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"accuracy values must lie in [0, 1]: column 'value' is {_shown(rows['value'].iloc[first])} "
            f"for {_cell_names(index[[first]])} ({int(bad.sum())} bad value(s) in all)"
        )
    return pd.Series(1.0 - values, index=index, name="error").sort_index()


def _cells(errors: pd.Series, model: str, role: str = "model") -> pd.Series:
    models = errors.index.unique("model")
    if model not in models:
        raise ValueError(f"{role} {model!r} is not in the results; models: {', '.join(map(repr, models))}")
    return errors.xs(model, level="model")


def _check_reference(cells: pd.Series, reference: str) -> None:
    corruption = cells.index.get_level_values("corruption")
    for dataset in cells.index.unique("dataset"):
        in_dataset = cells.index.get_level_values("dataset") == dataset
        if not (in_dataset & (corruption == CLEAN)).any():
            raise ValueError(f"reference {reference!r} lacks the clean cell of dataset {dataset!r}")
        if not (in_dataset & (corruption != CLEAN)).any():
            raise ValueError(f"reference {reference!r} has no corrupted cells for dataset {dataset!r}")


def _check_same_cells(cells: pd.Series, ref: pd.Series, model: str, reference: str) -> None:
    missing = ref.index.difference(cells.index)
    if len(missing):
        raise ValueError(
            f"model {model!r} lacks {len(missing)} cell(s) that reference {reference!r} has: {_cell_names(missing)}"
        )
    extra = cells.index.difference(ref.index)
    if len(extra):
        raise ValueError(
            f"reference {reference!r} lacks {len(extra)} cell(s) needed for model {model!r}: {_cell_names(extra)}"
        )


@dataclass(frozen=True)
class _Sums:
    """A model's errors summed for the ratios: per (dataset, corruption) and per dataset."""

    error: pd.Series  # Σ_s E_{d,s,c}
    drop: pd.Series  # Σ_s (E_{d,s,c} - E_{d,clean})
    clean: pd.Series  # E_{d,clean}
    mean: pd.Series  # mean_{c,s} E_{d,s,c}


def _sums(cells: pd.Series) -> _Sums:
    is_clean = cells.index.get_level_values("corruption") == CLEAN
    clean = cells[is_clean].droplevel(["corruption", "severity"])
    corrupted = cells[~is_clean]
    drop = corrupted - clean.loc[corrupted.index.get_level_values("dataset")].to_numpy()
    return _Sums(
        corrupted.groupby(level=_PAIR).sum(),
        drop.groupby(level=_PAIR).sum(),
        clean,
        corrupted.groupby(level="dataset").mean(),
    )


@dataclass(frozen=True)
class _Denominators:
    """The reference's denominators, NaN where a ratio is undefined."""

    ce: pd.Series
    rel_ce: pd.Series
    clean: pd.Series

    def excluded(self) -> dict[str, int]:
        return {
            "excluded_ce": int(self.ce.isna().sum()),
            "excluded_rel_ce": int(self.rel_ce.isna().sum()),
            "excluded_clean_err": int(self.clean.isna().sum()),
        }


def _denominators(ref: _Sums, reference: str) -> _Denominators:
    ce, rel_ce, clean = ref.error.where(ref.error > 0), ref.drop.where(ref.drop > 0), ref.clean.where(ref.clean > 0)
    for values, what, why in (
        (ce, "CE", "error summed over severities is 0"),
        (rel_ce, "relative CE", "error summed over severities, less its clean error, is <= 0"),
        (clean, "CleanErr", "clean error is 0"),
    ):
        undefined = values.index[values.isna()]
        if len(undefined):
            _undefined(
                f"{what} undefined for {_cell_names(undefined, limit=len(undefined))} (reference "
                f"{reference!r}: {why}); NaN, left out of the means"
            )
    return _Denominators(ce, rel_ce, clean)


def _reference(errors: pd.Series, reference: str) -> tuple[pd.Series, _Denominators]:
    ref = _cells(errors, reference, "reference model")
    _check_reference(ref, reference)
    return ref, _denominators(_sums(ref), reference)


def _ratios(
    cells: pd.Series, ref: pd.Series, den: _Denominators, model: str, reference: str
) -> tuple[_Sums, pd.DataFrame]:
    _check_same_cells(cells, ref, model, reference)
    sums = _sums(cells.reindex(ref.index))
    frame = pd.DataFrame({"ce": sums.error / den.ce, "rel_ce": sums.drop / den.rel_ce})
    return sums, frame


def corruption_errors(results: pd.DataFrame, model: str, reference: str = "clip-vit-b16") -> pd.DataFrame:
    """Corruption errors of one model, per dataset and corruption, relative to a reference model.

    ``CE = Σ_s E^f_{s,c} / Σ_s E^ref_{s,c}`` and ``RelCE = Σ_s (E^f_{s,c} - E^f_clean) / Σ_s (E^ref_{s,c} -
    E^ref_clean)``, with E the top-1 error (1 - accuracy). Both models must have the same cells.

    Args:
        results: Long-format results (:data:`RESULT_COLUMNS`); the ``accuracy`` rows are used.
        model: The model scored.
        reference: The reference model.

    Returns:
        Columns ``dataset``, ``corruption``, ``ce``, ``rel_ce`` (NaN where undefined, with a warning) and
        ``error`` (the model's mean error over severities).

    Raises:
        ValueError: If a model, a column or a cell is missing.
    """
    errors = _errors(results)
    ref, den = _reference(errors, reference)
    sums, frame = _ratios(_cells(errors, model), ref, den, model, reference)
    counts = ref[ref.index.get_level_values("corruption") != CLEAN].groupby(level=_PAIR).size()
    frame["error"] = sums.error / counts
    return frame.reset_index()


def _dataset_scores(sums: _Sums, ratios: pd.DataFrame, den: _Denominators) -> pd.DataFrame:
    """Per-dataset CleanErr, mCE, relative mCE and unnormalised mean error, all x 100, and the number of
    (dataset, corruption) pairs: all, and those whose CE and relative CE are defined (the means rest on them)."""
    groups = ratios.groupby(level="dataset")
    by_dataset = groups.mean()  # NaN ratios are left out
    scores = 100 * pd.DataFrame(
        {
            "clean_err": sums.clean / den.clean,
            "mce": by_dataset["ce"],
            "rel_mce": by_dataset["rel_ce"],
            "mean_err": sums.mean,
        }
    )
    counts = groups.count()
    return scores.assign(pairs=groups.size(), ce_pairs=counts["ce"], rel_ce_pairs=counts["rel_ce"])


def well_covered(defined: int, pairs: int) -> bool:
    """Whether a mean over ``defined`` of ``pairs`` ratios may be headlined: at least :data:`MIN_PAIR_COVERAGE`
    of them are defined."""
    return pairs > 0 and defined >= MIN_PAIR_COVERAGE * pairs


def _check_collections(collections: Mapping[str, Sequence[str]], datasets: pd.Index) -> None:
    for name, members in collections.items():
        if name in datasets:
            raise ValueError(f"collection {name!r} has the name of a dataset")
        if not members:
            raise ValueError(f"collection {name!r} is empty")
        unknown = [d for d in members if d not in datasets]
        if unknown:
            raise ValueError(f"collection {name!r} names dataset(s) not in the results: {', '.join(unknown)}")


def _model_row(scores: pd.DataFrame, collections: Mapping[str, Sequence[str]]) -> dict[str, float]:
    row = {score: scores[score].mean() for score in _SCORES}  # headline: unweighted mean over all datasets
    row |= {count: int(scores[count].sum()) for count in _COUNTS}
    for name, members in [*collections.items(), *((d, [d]) for d in scores.index)]:
        row |= {f"{score}/{name}": scores.loc[list(members), score].mean() for score in _SCORES}
        row |= {f"{count}/{name}": int(scores.loc[list(members), count].sum()) for count in _COUNTS}
    return row


def mce_table(
    results: pd.DataFrame, reference: str = "clip-vit-b16", collections: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """The mean corruption error table: one row per model, scored against a reference model (x 100).

    Per dataset d: ``clean_err/d = 100 E^f_clean / E^ref_clean``, ``mce/d = 100 mean_c CE``, ``rel_mce/d = 100
    mean_c RelCE`` and ``mean_err/d = 100 mean_{c,s} E^f`` (unnormalised). Each collection's columns
    (``mce/<collection>``, ...) are unweighted means over its datasets; the headline columns ``clean_err``, ``mce``,
    ``rel_mce`` and ``mean_err`` are unweighted means over all datasets. Undefined ratios are NaN, warned about,
    left out of the means and counted in ``excluded_ce``, ``excluded_rel_ce`` and ``excluded_clean_err``.
    ``pairs``, ``ce_pairs`` and ``rel_ce_pairs`` (and ``pairs/<name>``, ... per collection and dataset) count the
    (dataset, corruption) pairs: all of them, and those whose CE and relative CE are defined, i.e. what mCE and
    relative mCE rest on (see :func:`well_covered`). The reference scores exactly 100 against itself.

    Args:
        results: Long-format results (:data:`RESULT_COLUMNS`); the ``accuracy`` rows are used. Every model must
            have exactly the reference's cells, a clean cell (severity 0) per dataset included.
        reference: The reference model (CLIP ViT-B/16 in the paper).
        collections: Named lists of datasets (e.g. MedMNIST-C, MediMeta-C) to average over.

    Returns:
        A frame indexed by model; the reference name is in ``attrs["reference"]``.

    Raises:
        ValueError: If the reference, a column or a cell is missing, or a collection names an unknown dataset.
    """
    errors = _errors(results)
    ref, den = _reference(errors, reference)
    collections = dict(collections or {})
    _check_collections(collections, ref.index.unique("dataset"))
    rows = {}
    for model in pd.unique(results.loc[results["metric"] == "accuracy", "model"].astype(str)):  # first-seen order
        sums, ratios = _ratios(_cells(errors, model), ref, den, model, reference)
        rows[model] = _model_row(_dataset_scores(sums, ratios, den), collections) | den.excluded()
    table = pd.DataFrame.from_dict(rows, orient="index")
    counts = [column for column in table.columns if column.split("/")[0] in _COUNTS]
    table[counts] = table[counts].astype(int)
    table.index.name = "model"
    table.attrs["reference"] = reference
    return table


def _group_scores(ces: pd.DataFrame, mask: pd.Series) -> dict[str, float | int]:
    """mCE and relative mCE (x 100) over the pairs in ``mask``: the mean over datasets of each dataset's mean."""
    part = ces[mask]
    by_dataset = part.groupby("dataset")[["ce", "rel_ce"]].mean()
    return {
        "mce": 100 * by_dataset["ce"].mean(),
        "rel_mce": 100 * by_dataset["rel_ce"].mean(),
        "pairs": len(part),
        "datasets": int(by_dataset["ce"].notna().sum()),
    }


def seen_held_out_mce(
    results: pd.DataFrame, seen: Sequence[str] | Mapping[str, Sequence[str]], reference: str = "clip-vit-b16"
) -> pd.DataFrame:
    """mCE on the corruptions seen in training and on those held out, separately, one row per model.

    A model trained with corruption augmentation (RobustMedCLIP with ``augment``) is not tested by the corruptions
    it was trained on: its held-out mCE is the honest number. Each group's mCE is computed as :func:`mce_table`'s
    (CE per (dataset, corruption) against ``reference``, the mean over a dataset's corruptions of the group, then
    the unweighted mean over the datasets that have any); ``pairs`` counts the group's (dataset, corruption) pairs.

    Args:
        results: Long-format results (:data:`RESULT_COLUMNS`); the ``accuracy`` rows are used.
        seen: The corruption names seen in training (e.g.
            :func:`hf_robustmed.adaptation.card.seen_corruptions` of the adapter), for every model, or per model
            (models not in the mapping saw none).
        reference: The reference model of the CE ratios.

    Returns:
        A frame indexed by model with ``mce_seen``, ``mce_held_out``, ``rel_mce_seen``, ``rel_mce_held_out``,
        ``pairs_seen``, ``pairs_held_out``, ``datasets_seen``, ``datasets_held_out`` (NaN means where a group
        is empty) and ``seen`` (the comma-joined names).

    Raises:
        ValueError: If the reference, a column or a cell is missing.
    """
    rows = {}
    for model in pd.unique(results.loc[results["metric"] == "accuracy", "model"].astype(str)):
        names = seen.get(model, ()) if isinstance(seen, Mapping) else seen
        ces = corruption_errors(results, model, reference)
        is_seen = ces["corruption"].isin(list(names))
        row = {"seen": ",".join(names)}
        for group, mask in (("seen", is_seen), ("held_out", ~is_seen)):
            row |= {f"{k}_{group}": v for k, v in _group_scores(ces, mask).items()}
        rows[model] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    table.attrs["reference"] = reference
    return table


# --------------------------------------------------------------------------------------------------------------------
# MedMNIST-C balanced error
# --------------------------------------------------------------------------------------------------------------------

# AlexNet's balanced error (1 - balanced accuracy) per MedMNIST dataset: clean, and the mean over the five severities
# of each corruption of the dataset's MedMNIST-C set. Verbatim from medmnistc 0.1.0 (medmnistc/utils/baselines.py).
ALEXNET_BASELINES: dict[str, dict[str, float]] = {
    "pathmnist": {
        "clean": 0.08839299601334816,
        "pixelate": 0.20934201922262957,
        "jpeg_compression": 0.24709267033930377,
        "defocus_blur": 0.4621259742146214,
        "motion_blur": 0.3689076534699618,
        "brightness_up": 0.41551581022730166,
        "brightness_down": 0.2811688318161528,
        "contrast_up": 0.2338925659881773,
        "contrast_down": 0.13718687818913905,
        "saturate": 0.3341143518079194,
        "stain_deposit": 0.24930831751137275,
        "bubble": 0.10818301335634566,
    },
    "bloodmnist": {
        "clean": 0.018369282094266692,
        "pixelate": 0.05975618949678589,
        "jpeg_compression": 0.13976187053705183,
        "defocus_blur": 0.22399795597780647,
        "motion_blur": 0.1845192137218041,
        "brightness_up": 0.06946294328845175,
        "brightness_down": 0.0790077546902872,
        "contrast_up": 0.05215362284240639,
        "contrast_down": 0.07966068499560328,
        "saturate": 0.03478558170020538,
        "stain_deposit": 0.18536119379858546,
        "bubble": 0.12898833684644578,
    },
    "dermamnist": {
        "clean": 0.3985775597242611,
        "pixelate": 0.5105118313063095,
        "jpeg_compression": 0.47716296678659287,
        "gaussian_noise": 0.770161396521756,
        "speckle_noise": 0.7688784860204994,
        "impulse_noise": 0.7995552265467947,
        "shot_noise": 0.8391552104792783,
        "defocus_blur": 0.7008318467374395,
        "motion_blur": 0.6266414682428412,
        "zoom_blur": 0.5277668583085878,
        "brightness_up": 0.4473990148869178,
        "brightness_down": 0.5772968080812169,
        "contrast_up": 0.430415384126964,
        "contrast_down": 0.5398210493891896,
        "black_corner": 0.7591457853547467,
        "characters": 0.4461917314736283,
    },
    "retinamnist": {
        "clean": 0.5582064849927977,
        "pixelate": 0.6017003263074344,
        "jpeg_compression": 0.6795223564688244,
        "gaussian_noise": 0.7040832524914012,
        "speckle_noise": 0.6135258841167651,
        "defocus_blur": 0.6882905018079196,
        "motion_blur": 0.7075760943057883,
        "brightness_down": 0.5844791133844842,
        "contrast_down": 0.6092882382338243,
    },
    "tissuemnist": {
        "clean": 0.3917787199385978,
        "pixelate": 0.49272908707597907,
        "jpeg_compression": 0.508070087070269,
        "impulse_noise": 0.7970869222746931,
        "gaussian_blur": 0.4805143361974326,
        "brightness_up": 0.4618274173802247,
        "brightness_down": 0.51981943234386,
        "contrast_up": 0.5026233641102424,
        "contrast_down": 0.5369342652194591,
    },
    "octmnist": {
        "clean": 0.20199999999999996,
        "pixelate": 0.3124,
        "jpeg_compression": 0.29640000000000005,
        "speckle_noise": 0.386,
        "defocus_blur": 0.3084,
        "motion_blur": 0.4892,
        "contrast_down": 0.4196,
    },
    "breastmnist": {
        "clean": 0.14536340852130336,
        "pixelate": 0.46127819548872184,
        "jpeg_compression": 0.2986215538847118,
        "speckle_noise": 0.38709273182957393,
        "motion_blur": 0.25902255639097743,
        "brightness_up": 0.3197994987468672,
        "brightness_down": 0.21127819548872181,
        "contrast_down": 0.15864661654135334,
    },
    "chestmnist": {
        "clean": 0.2839064387513035,
        "pixelate": 0.44895070087295996,
        "jpeg_compression": 0.34575690815860566,
        "gaussian_noise": 0.47688317292098203,
        "speckle_noise": 0.45687894795025785,
        "impulse_noise": 0.48553631547337917,
        "shot_noise": 0.4926966815396587,
        "gaussian_blur": 0.3176801263607164,
        "brightness_up": 0.2993721457134663,
        "brightness_down": 0.29711530406534037,
        "contrast_up": 0.28751004051276824,
        "contrast_down": 0.2954742427570406,
        "gamma_corr_up": 0.287462117104012,
        "gamma_corr_down": 0.2891642074561852,
    },
    "pneumoniamnist": {
        "clean": 0.10085470085470083,
        "pixelate": 0.22102564102564104,
        "jpeg_compression": 0.2798290598290598,
        "gaussian_noise": 0.4414529914529915,
        "speckle_noise": 0.3457264957264957,
        "impulse_noise": 0.4581196581196581,
        "shot_noise": 0.4106837606837607,
        "gaussian_blur": 0.2730769230769231,
        "brightness_up": 0.14649572649572645,
        "brightness_down": 0.2782051282051282,
        "contrast_up": 0.09529914529914527,
        "contrast_down": 0.23743589743589744,
        "gamma_corr_up": 0.09606837606837607,
        "gamma_corr_down": 0.16641025641025642,
    },
    "organamnist": {
        "clean": 0.050053710403475504,
        "pixelate": 0.07589728744538755,
        "jpeg_compression": 0.10233182799848468,
        "gaussian_noise": 0.558867512509986,
        "speckle_noise": 0.5008977196696448,
        "impulse_noise": 0.6005122792556206,
        "shot_noise": 0.5704549211261293,
        "gaussian_blur": 0.23340661727240267,
        "brightness_up": 0.14763547790322412,
        "brightness_down": 0.2646445055204496,
        "contrast_up": 0.10977873034814234,
        "contrast_down": 0.1268424696095805,
        "gamma_corr_up": 0.10360009998047674,
        "gamma_corr_down": 0.10577092296366888,
    },
    "organcmnist": {
        "clean": 0.07596783210891289,
        "pixelate": 0.12161270665759313,
        "jpeg_compression": 0.10754481922990186,
        "gaussian_noise": 0.5736544084235357,
        "speckle_noise": 0.5130960298987614,
        "impulse_noise": 0.5997780092763433,
        "shot_noise": 0.5492477253691926,
        "gaussian_blur": 0.316895537101905,
        "brightness_up": 0.16011849294420644,
        "brightness_down": 0.2324271692594097,
        "contrast_up": 0.09991836613387597,
        "contrast_down": 0.15327395964015147,
        "gamma_corr_up": 0.1426418229218433,
        "gamma_corr_down": 0.12390902424472901,
    },
    "organsmnist": {
        "clean": 0.24300485476777922,
        "pixelate": 0.31259415418134306,
        "jpeg_compression": 0.26996994867350865,
        "gaussian_noise": 0.5889124203738291,
        "speckle_noise": 0.5450100158501043,
        "impulse_noise": 0.6010108858901404,
        "shot_noise": 0.5519125643755777,
        "gaussian_blur": 0.4466645657200248,
        "brightness_up": 0.3598501969979232,
        "brightness_down": 0.3592866403894267,
        "contrast_up": 0.2871702451645464,
        "contrast_down": 0.3128243336438499,
        "gamma_corr_up": 0.30253196514691594,
        "gamma_corr_down": 0.3116016263827458,
    },
}


def _mean_be_by_corruption(be_by_cell: Mapping[tuple[str, int] | str, float]) -> dict[str, float]:
    by_corruption: dict[str, list[float]] = {}
    for key, value in be_by_cell.items():
        if key == CLEAN:
            continue
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] != CLEAN):
            raise ValueError(f"be_by_cell keys must be 'clean' or (corruption, severity), got {key!r}")
        by_corruption.setdefault(str(key[0]), []).append(float(value))
    if not by_corruption:
        raise ValueError("be_by_cell holds no corrupted cells")
    return {name: float(np.mean(values)) for name, values in by_corruption.items()}


def _ratio_or_nan(numerator: float, denominator: float | None, what: str) -> float:
    if denominator is None or denominator == 0 or not np.isfinite(denominator):
        _undefined(f"{what}: the AlexNet baseline is missing or zero; NaN, left out of the means")
        return float("nan")
    return numerator / denominator


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def balanced_error_scores(be_by_cell: Mapping[tuple[str, int] | str, float], dataset: str) -> dict:
    """MedMNIST-C's balanced error scores of one model on one dataset, normalised by AlexNet.

    With BE = 1 - balanced accuracy (for multi-label tasks, the mean over labels), per corruption c:
    ``BE_c = mean_s BE_{s,c} / BE^AlexNet_c`` and ``rBE_c = (mean_s BE_{s,c} - BE_clean) / (BE^AlexNet_c -
    BE^AlexNet_clean)``; ``be`` and ``rbe`` are their means over corruptions (unscaled). A missing or zero
    baseline gives NaN with a warning, left out of the means and counted in ``excluded``. A negative rBE
    denominator (AlexNet better under the corruption than clean, e.g. pneumoniamnist contrast_up) is kept, as
    in MedMNIST-C.

    Args:
        be_by_cell: Balanced error per ``(corruption, severity)``, plus ``"clean"``.
        dataset: MedMNIST dataset flag, a key of :data:`ALEXNET_BASELINES`.

    Returns:
        ``be``, ``rbe``, ``clean`` (the model's clean BE), ``be_by_corruption``, ``rbe_by_corruption``,
        ``excluded`` (the number of NaN ratios) and ``missing_corruptions`` (baseline corruptions not given, which
        are warned about).

    Raises:
        ValueError: If the dataset has no baseline, or ``be_by_cell`` lacks the clean cell or corrupted cells.
    """
    if dataset not in ALEXNET_BASELINES:
        raise ValueError(f"no AlexNet baseline for dataset {dataset!r}; known: {', '.join(ALEXNET_BASELINES)}")
    if CLEAN not in be_by_cell:
        raise ValueError(f"be_by_cell lacks the 'clean' balanced error needed for rBE ({dataset})")
    baseline, clean = ALEXNET_BASELINES[dataset], float(be_by_cell[CLEAN])
    means = _mean_be_by_corruption(be_by_cell)
    missing = [c for c in baseline if c != CLEAN and c not in means]
    if missing:
        _undefined(f"{dataset}: no balanced errors for corruption(s) {', '.join(missing)}; scores cover the others")
    be, rbe = {}, {}
    for name, mean in means.items():
        base, base_clean = baseline.get(name), baseline.get(CLEAN)
        be[name] = _ratio_or_nan(mean, base, f"BE of {dataset}/{name}")
        rbe_den = None if base is None or base_clean is None else base - base_clean
        rbe[name] = _ratio_or_nan(mean - clean, rbe_den, f"rBE of {dataset}/{name}")
    excluded = sum(np.isnan(v) for v in [*be.values(), *rbe.values()])
    return {
        "be": _nanmean(list(be.values())),
        "rbe": _nanmean(list(rbe.values())),
        "clean": clean,
        "be_by_corruption": be,
        "rbe_by_corruption": rbe,
        "excluded": int(excluded),
        "missing_corruptions": missing,
    }
