"""The metrics layer: per-cell scores, ImageNet-C corruption errors and MedMNIST-C balanced errors, by hand."""

import itertools
import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require

from hf_robustmed import metrics
from hf_robustmed.corruptions import get_suite
from hf_robustmed.metrics import (
    ALEXNET_BASELINES,
    RESULT_COLUMNS,
    UndefinedMetricWarning,
    accuracy,
    balanced_accuracy,
    balanced_error_scores,
    cell_metrics,
    corruption_errors,
    macro_roc_auc,
    mce_table,
    results_from_predictions,
    validate_examples,
    well_covered,
)

MCE_SPACE = Path(__file__).resolve().parents[1] / "spaces" / "mce"

# ---------------------------------------------------------------------------------------------------------------------
# Per-cell metrics
# ---------------------------------------------------------------------------------------------------------------------


def brute_force_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 1/2 P(tie), over all pairs."""
    pos, neg = scores[positive], scores[~positive]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_accuracy_and_balanced_accuracy_by_hand():
    labels, preds = [0, 0, 0, 1], [0, 0, 1, 1]
    assert accuracy(labels, preds) == 0.75
    # recall of class 0: 2/3, of class 1: 1/1 -> mean 5/6
    assert balanced_accuracy(labels, preds) == pytest.approx((2 / 3 + 1) / 2)
    # class 2 is predicted but absent from the labels: it is not a term of the mean
    assert balanced_accuracy([0, 0, 1, 1], [0, 2, 1, 1]) == pytest.approx((1 / 2 + 1) / 2)
    with pytest.raises(ValueError, match="length"):
        accuracy([0, 1], [0])


def test_binary_auc_with_ties_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 0])
    scores = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.9])
    # positives .4, .8, .4 against negatives .1, .4, .9:
    #   .4 -> 1 + 1/2 + 0 = 1.5;  .8 -> 1 + 1 + 0 = 2;  .4 -> 1.5;   total 5 of 9 pairs
    assert macro_roc_auc(labels, scores) == pytest.approx(5 / 9)
    assert macro_roc_auc(labels, np.stack([1 - scores, scores], 1)) == pytest.approx(5 / 9)
    assert brute_force_auc(labels == 1, scores) == pytest.approx(5 / 9)


def test_auc_matches_pairwise_count_with_many_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = rng.integers(0, 5, 60) / 4  # five distinct values: many ties
    assert macro_roc_auc(labels, scores) == pytest.approx(brute_force_auc(labels == 1, scores), abs=1e-12)


def test_multiclass_auc_is_macro_one_vs_rest_over_present_classes():
    rng = np.random.default_rng(1)
    labels = rng.choice([0, 1, 3], 40)  # class 2 never occurs: it has no positives and is skipped
    probs = rng.dirichlet(np.ones(4), 40).round(1)  # rounding makes ties
    expected = np.mean([brute_force_auc(labels == c, probs[:, c]) for c in (0, 1, 3)])
    assert macro_roc_auc(labels, probs) == pytest.approx(expected, abs=1e-12)


def test_auc_of_a_single_class_is_nan_with_a_warning():
    with pytest.warns(UndefinedMetricWarning, match="single class"):
        assert math.isnan(macro_roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))


def test_cell_metrics_by_hand():
    labels = [0, 1, 1, 0]
    probs = [[0.6, 0.4], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5]]  # arg-max 0, 1, 0, 0: three correct
    out = cell_metrics(labels, probs)
    # AUC of column 1: positives .7, .4 against negatives .4, .5 -> (1 + 1 + 1/2 + 0) / 4
    assert out == {"accuracy": 0.75, "balanced_accuracy": 0.75, "roc_auc": 0.625, "error": 0.25, "n": 4}


# ---------------------------------------------------------------------------------------------------------------------
# ImageNet-C corruption errors
# ---------------------------------------------------------------------------------------------------------------------

# Top-1 errors E per model, dataset: clean, then per corruption the five severities.
ERRORS = {
    "ref": {
        "d1": {"clean": 0.10, "blur": [0.20, 0.25, 0.30, 0.35, 0.40], "noise": [0.10, 0.20, 0.30, 0.40, 0.50]},
        "d2": {"clean": 0.20, "blur": [0.30, 0.30, 0.30, 0.30, 0.30], "noise": [0.40, 0.40, 0.50, 0.50, 0.60]},
    },
    "m1": {
        "d1": {"clean": 0.05, "blur": [0.10, 0.15, 0.15, 0.20, 0.15], "noise": [0.30, 0.30, 0.30, 0.30, 0.30]},
        "d2": {"clean": 0.10, "blur": [0.15, 0.20, 0.25, 0.30, 0.35], "noise": [0.60, 0.60, 0.60, 0.60, 0.60]},
    },
    "m2": {
        "d1": {"clean": 0.20, "blur": [0.40, 0.50, 0.60, 0.70, 0.80], "noise": [0.20, 0.40, 0.60, 0.80, 1.00]},
        "d2": {"clean": 0.40, "blur": [0.60, 0.60, 0.60, 0.60, 0.60], "noise": [0.50, 0.50, 0.50, 0.50, 0.50]},
    },
}


def long_results(errors: dict) -> pd.DataFrame:
    rows = []
    for model, datasets in errors.items():
        for dataset, cells in datasets.items():
            rows.append((model, dataset, "clean", 0, "accuracy", 1 - cells["clean"], 100))
            rows.append((model, dataset, "clean", 0, "roc_auc", 0.5, 100))  # other metrics are ignored
            for corruption in ("blur", "noise"):
                for severity, error in enumerate(cells[corruption], 1):
                    rows.append((model, dataset, corruption, severity, "accuracy", 1 - error, 100))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


@pytest.fixture
def results() -> pd.DataFrame:
    return long_results(ERRORS)


def test_corruption_errors_by_hand(results):
    ce = corruption_errors(results, "m1", reference="ref").set_index(["dataset", "corruption"])
    # reference sums: d1 blur .20+.25+.30+.35+.40 = 1.50, d1 noise .1+.2+.3+.4+.5 = 1.50,
    #                 d2 blur 5 x .30 = 1.50, d2 noise .4+.4+.5+.5+.6 = 2.40
    # m1 sums:        d1 blur .10+.15+.15+.20+.15 = 0.75, d1 noise 1.50, d2 blur .15+.20+.25+.30+.35 = 1.25, noise 3.00
    assert ce.loc[("d1", "blur"), "ce"] == pytest.approx(0.75 / 1.50)
    assert ce.loc[("d1", "noise"), "ce"] == pytest.approx(1.50 / 1.50)
    assert ce.loc[("d2", "blur"), "ce"] == pytest.approx(1.25 / 1.50)
    assert ce.loc[("d2", "noise"), "ce"] == pytest.approx(3.00 / 2.40)
    # RelCE: (Σ E - 5 E_clean) / (Σ E_ref - 5 E_ref_clean)
    assert ce.loc[("d1", "blur"), "rel_ce"] == pytest.approx((0.75 - 5 * 0.05) / (1.50 - 5 * 0.10))  # 0.5
    assert ce.loc[("d1", "noise"), "rel_ce"] == pytest.approx((1.50 - 5 * 0.05) / (1.50 - 5 * 0.10))  # 1.25
    assert ce.loc[("d2", "blur"), "rel_ce"] == pytest.approx((1.25 - 5 * 0.10) / (1.50 - 5 * 0.20))  # 1.5
    assert ce.loc[("d2", "noise"), "rel_ce"] == pytest.approx((3.00 - 5 * 0.10) / (2.40 - 5 * 0.20))  # 2.5/1.4
    assert ce.loc[("d2", "blur"), "error"] == pytest.approx(1.25 / 5)


def test_mce_table_by_hand(results):
    table = mce_table(results, reference="ref", collections={"A": ["d1"], "AB": ["d1", "d2"]})
    assert list(table.index) == ["ref", "m1", "m2"]
    m1 = table.loc["m1"]
    mce_d1 = 100 * (0.75 / 1.50 + 1.50 / 1.50) / 2  # 75
    mce_d2 = 100 * (1.25 / 1.50 + 3.00 / 2.40) / 2  # 104.1667
    assert m1["mce/d1"] == pytest.approx(75.0) and mce_d1 == pytest.approx(75.0)
    assert m1["mce/d2"] == pytest.approx(mce_d2)
    assert m1["mce"] == pytest.approx((mce_d1 + mce_d2) / 2)  # unweighted over datasets: 89.5833
    assert m1["mce/A"] == pytest.approx(mce_d1)
    assert m1["mce/AB"] == pytest.approx((mce_d1 + mce_d2) / 2)
    rel_d1 = 100 * ((0.75 - 0.25) / 1.0 + (1.50 - 0.25) / 1.0) / 2  # 87.5
    rel_d2 = 100 * ((1.25 - 0.50) / 0.5 + (3.00 - 0.50) / 1.4) / 2  # 164.2857
    assert m1["rel_mce/d1"] == pytest.approx(rel_d1)
    assert m1["rel_mce/d2"] == pytest.approx(rel_d2)
    assert m1["rel_mce"] == pytest.approx((rel_d1 + rel_d2) / 2)
    assert m1["clean_err/d1"] == pytest.approx(100 * 0.05 / 0.10)  # 50
    assert m1["clean_err/d2"] == pytest.approx(100 * 0.10 / 0.20)  # 50
    assert m1["clean_err"] == pytest.approx(50.0)
    assert m1["mean_err/d1"] == pytest.approx(100 * (0.75 + 1.50) / 10)  # 22.5, not normalised
    assert m1["mean_err/d2"] == pytest.approx(100 * (1.25 + 3.00) / 10)  # 42.5
    assert m1["mean_err"] == pytest.approx((22.5 + 42.5) / 2)
    m2 = table.loc["m2"]
    assert m2["mce/d1"] == pytest.approx(100 * (3.0 / 1.5 + 3.0 / 1.5) / 2)  # 200
    assert m2["mce/d2"] == pytest.approx(100 * (3.0 / 1.5 + 2.5 / 2.4) / 2)  # 152.0833
    assert m2["clean_err/d2"] == pytest.approx(200.0)
    assert (table[["excluded_ce", "excluded_rel_ce", "excluded_clean_err"]] == 0).all().all()
    assert table.attrs["reference"] == "ref"


def test_reference_scores_exactly_100(results):
    table = mce_table(results, reference="ref", collections={"A": ["d1"]})
    scores = table.loc[
        "ref", [c for c in table.columns if not c.startswith(("mean_err", "excluded")) and "pairs" not in c]
    ]
    assert (scores == 100.0).all(), scores[scores != 100.0]


def test_zero_reference_error_is_nan_warned_excluded_and_counted():
    errors = json.loads(json.dumps(ERRORS))
    errors["ref"]["d1"]["blur"] = [0.0] * 5  # Σ_s E_ref = 0 and Σ_s (E_ref - E_ref_clean) = -0.5
    with pytest.warns(UndefinedMetricWarning, match="d1/blur"):
        table = mce_table(long_results(errors), reference="ref")
    m1 = table.loc["m1"]
    assert m1["mce/d1"] == pytest.approx(100 * 1.50 / 1.50)  # only d1/noise is left in d1's mean
    assert m1["rel_mce/d1"] == pytest.approx(100 * (1.50 - 0.25) / 1.0)
    assert m1["mce/d2"] == pytest.approx(100 * (1.25 / 1.50 + 3.00 / 2.40) / 2)  # d2 is untouched
    assert m1["mce"] == pytest.approx((100.0 + m1["mce/d2"]) / 2)  # datasets weigh the same, whatever their counts
    assert table.loc["m1", "excluded_ce"] == 1 and table.loc["m1", "excluded_rel_ce"] == 1
    assert table.loc["m1", "excluded_clean_err"] == 0
    # what each mean rests on: 4 pairs in all, 3 with a defined CE and relative CE; d1 keeps 1 of its 2
    assert table.loc["m1", ["pairs", "ce_pairs", "rel_ce_pairs"]].tolist() == [4, 3, 3]
    assert table.loc["m1", ["pairs/d1", "ce_pairs/d1", "rel_ce_pairs/d1", "ce_pairs/d2"]].tolist() == [2, 1, 1, 2]
    assert well_covered(1, 2) and well_covered(3, 4) and not well_covered(1, 3) and not well_covered(0, 0)
    with pytest.warns(UndefinedMetricWarning, match="d1/blur"):
        ce = corruption_errors(long_results(errors), "m1", reference="ref").set_index(["dataset", "corruption"])
    assert math.isnan(ce.loc[("d1", "blur"), "ce"]) and math.isnan(ce.loc[("d1", "blur"), "rel_ce"])


def test_zero_reference_clean_error_makes_clean_err_nan():
    errors = json.loads(json.dumps(ERRORS))
    errors["ref"]["d2"]["clean"] = 0.0
    with pytest.warns(UndefinedMetricWarning, match="CleanErr undefined for d2"):
        table = mce_table(long_results(errors), reference="ref")
    assert math.isnan(table.loc["m1", "clean_err/d2"])
    assert table.loc["m1", "clean_err"] == pytest.approx(50.0)  # the mean over the defined dataset only
    assert table.loc["m1", "excluded_clean_err"] == 1


def test_missing_reference_or_cell_raises_naming_it(results):
    with pytest.raises(ValueError, match="reference model 'clip-vit-b16' is not in the results"):
        mce_table(results)
    gap = results.drop(
        results.index[
            (results.model == "m1")
            & (results.dataset == "d2")
            & (results.corruption == "noise")
            & (results.severity == 3)
        ]
    )
    with pytest.raises(ValueError, match="model 'm1' lacks 1 cell.*d2/noise/3"):
        mce_table(gap, reference="ref")
    no_clean = results.drop(
        results.index[(results.model == "ref") & (results.corruption == "clean") & (results.dataset == "d1")]
    )
    with pytest.raises(ValueError, match="clean cell of dataset 'd1'"):
        mce_table(no_clean, reference="ref")
    with pytest.raises(ValueError, match="not in the results: d9"):
        mce_table(results, reference="ref", collections={"X": ["d1", "d9"]})
    with pytest.raises(ValueError, match="duplicate"):
        mce_table(pd.concat([results, results.iloc[:1]]), reference="ref")


def test_results_from_predictions_counts_accuracy_per_cell():
    examples = pd.DataFrame(
        {
            "model": ["a"] * 4,
            "dataset": ["d"] * 4,
            "corruption": ["clean", "clean", "blur", "blur"],
            "severity": [0, 0, 1, 1],
            "reference": [0, 1, 0, 1],
            "prediction": [0, 1, 1, 1],
        }
    )
    out = results_from_predictions(examples)
    assert out.columns.tolist() == list(RESULT_COLUMNS)
    assert out[["corruption", "value", "n"]].values.tolist() == [["clean", 1.0, 2], ["blur", 0.5, 2]]


def _examples(**changes) -> pd.DataFrame:
    columns = {
        "model": ["a"] * 4,
        "dataset": ["d"] * 4,
        "corruption": ["clean", "clean", "blur", "blur"],
        "severity": [0, 0, 1, 1],
        "reference": [0, 1, 0, 1],
        "prediction": [0, 1, 1, 1],
    }
    for name, (index, value) in changes.items():
        columns[name] = list(columns[name])
        columns[name][index] = value
    return pd.DataFrame(columns)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"severity": (2, 7)}, r"severity\[2\] = 7: severity must be an integer 1..5 for corruption 'blur'"),
        ({"severity": (3, -1)}, r"severity\[3\] = -1: severity must be an integer 1..5"),
        ({"severity": (2, 2.5)}, r"severity\[2\] = 2.5: severity must be an integer 1..5"),
        ({"severity": (0, 1)}, r"severity\[0\] = 1: severity must be 0 for an example of corruption 'clean'"),
        ({"reference": (1, None)}, r"reference\[1\] = .*: missing"),
        ({"prediction": (2, float("nan"))}, r"prediction\[2\] = nan: missing"),
        ({"prediction": (2, 1.5)}, r"prediction\[2\] = 1.5: must be a class index"),
        ({"dataset": (0, None)}, r"dataset\[0\] = (None|nan): must be a non-empty string"),
    ],
)
def test_bad_examples_are_refused_naming_the_field_and_value(change, message):
    with pytest.raises(ValueError, match=message):
        results_from_predictions(_examples(**change))


def test_validate_examples_accepts_whole_floats_and_checks_lengths():
    validate_examples(
        {
            "predictions": [0, 1.0],
            "references": [np.int64(1), 0],
            "severity": [0.0, 3],
            "corruption": ["clean", "blur"],
            "model": ["a", "a"],
            "dataset": ["d", "d"],
        }
    )
    with pytest.raises(ValueError, match="inputs differ in length: predictions 2, references 1"):
        validate_examples({"predictions": [0, 1], "references": [0]})


def test_nan_accuracy_names_the_cell_and_the_value(results):
    broken = results.copy()
    broken.loc[
        (broken.model == "m1")
        & (broken.dataset == "d2")
        & (broken.corruption == "clean")
        & (broken.metric == "accuracy"),
        "value",
    ] = float("nan")
    with pytest.raises(ValueError, match=r"column 'value' is nan for m1/d2/clean/0"):
        mce_table(broken, reference="ref")


# ---------------------------------------------------------------------------------------------------------------------
# MedMNIST-C balanced error
# ---------------------------------------------------------------------------------------------------------------------


def test_alexnet_baselines_cover_each_medmnist_c_corruption_set():
    for dataset, baseline in ALEXNET_BASELINES.items():
        assert set(baseline) - {"clean"} == set(get_suite(f"medmnist-c/{dataset}").corruptions), dataset
    assert ALEXNET_BASELINES["breastmnist"]["clean"] == 0.14536340852130336
    assert ALEXNET_BASELINES["organsmnist"]["gamma_corr_down"] == 0.3116016263827458


def test_balanced_error_scores_by_hand_on_breastmnist():
    be_by_cell = {"clean": 0.2}
    be_by_cell |= {("pixelate", s): e for s, e in zip(range(1, 6), [0.3, 0.3, 0.4, 0.4, 0.6], strict=True)}  # mean 0.4
    for corruption in (
        "jpeg_compression",
        "speckle_noise",
        "motion_blur",
        "brightness_up",
        "brightness_down",
        "contrast_down",
    ):
        be_by_cell |= {(corruption, s): 0.3 for s in range(1, 6)}  # mean 0.3
    out = balanced_error_scores(be_by_cell, "breastmnist")
    alex_clean = 0.14536340852130336
    alex = {
        "pixelate": 0.46127819548872184,
        "jpeg_compression": 0.2986215538847118,
        "speckle_noise": 0.38709273182957393,
        "motion_blur": 0.25902255639097743,
        "brightness_up": 0.3197994987468672,
        "brightness_down": 0.21127819548872181,
        "contrast_down": 0.15864661654135334,
    }
    assert out["be_by_corruption"]["pixelate"] == pytest.approx(0.4 / 0.46127819548872184)
    assert out["rbe_by_corruption"]["pixelate"] == pytest.approx((0.4 - 0.2) / (0.46127819548872184 - alex_clean))
    assert out["rbe_by_corruption"]["contrast_down"] == pytest.approx((0.3 - 0.2) / (0.15864661654135334 - alex_clean))
    be = (0.4 / alex["pixelate"] + sum(0.3 / alex[c] for c in alex if c != "pixelate")) / 7
    rbe = (
        (0.4 - 0.2) / (alex["pixelate"] - alex_clean)
        + sum((0.3 - 0.2) / (alex[c] - alex_clean) for c in alex if c != "pixelate")
    ) / 7
    assert out["be"] == pytest.approx(be)
    assert out["rbe"] == pytest.approx(rbe)
    assert out["clean"] == 0.2 and out["excluded"] == 0 and out["missing_corruptions"] == []


def test_balanced_error_zero_or_missing_baseline_is_nan_with_warning(monkeypatch):
    monkeypatch.setitem(metrics.ALEXNET_BASELINES, "toy", {"clean": 0.1, "a": 0.0, "b": 0.3, "c": 0.1})
    be_by_cell = {"clean": 0.2, ("a", 1): 0.4, ("b", 1): 0.5, ("c", 1): 0.3, ("zzz", 1): 0.9}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = balanced_error_scores(be_by_cell, "toy")
    messages = " | ".join(str(w.message) for w in caught if issubclass(w.category, UndefinedMetricWarning))
    assert "BE of toy/a" in messages and "toy/zzz" in messages and "rBE of toy/c" in messages
    assert math.isnan(out["be_by_corruption"]["a"])  # zero baseline: not 0.4 / previous value
    assert out["rbe_by_corruption"]["a"] == pytest.approx((0.4 - 0.2) / (0.0 - 0.1))  # defined, kept
    assert math.isnan(out["rbe_by_corruption"]["c"])  # AlexNet c == clean: zero denominator
    assert math.isnan(out["be_by_corruption"]["zzz"]) and math.isnan(out["rbe_by_corruption"]["zzz"])
    assert out["be"] == pytest.approx((0.5 / 0.3 + 0.3 / 0.1) / 2)
    assert out["rbe"] == pytest.approx(((0.4 - 0.2) / -0.1 + (0.5 - 0.2) / 0.2) / 2)
    assert out["excluded"] == 4


def test_balanced_error_needs_clean_and_a_known_dataset():
    with pytest.raises(ValueError, match="clean"):
        balanced_error_scores({("pixelate", 1): 0.3}, "breastmnist")
    with pytest.raises(ValueError, match="no AlexNet baseline"):
        balanced_error_scores({"clean": 0.1, ("pixelate", 1): 0.3}, "imagenet")


# ---------------------------------------------------------------------------------------------------------------------
# The evaluate module (spaces/mce), loaded offline in a fresh interpreter
# ---------------------------------------------------------------------------------------------------------------------

_LOAD_AND_COMPUTE = """
import json, sys, warnings
import evaluate
warnings.simplefilter("ignore")
inputs = json.load(sys.stdin)
module = evaluate.load(inputs.pop("path"))
print(json.dumps(module.compute(**inputs)))
"""


def test_evaluate_module_matches_library(tmp_path):
    """The module's table against values computed by hand (the definitions of SPEC §6), then the library's."""
    require("evaluate")
    # errors per (model, dataset, corruption, severity); 10 samples per cell, the first k of them wrong
    errors = {
        ("ref", "d1", "clean", 0): 0.1,
        ("ref", "d1", "blur", 1): 0.2,
        ("ref", "d1", "blur", 2): 0.4,
        ("ref", "d2", "clean", 0): 0.2,
        ("ref", "d2", "noise", 1): 0.5,
        ("m1", "d1", "clean", 0): 0.1,
        ("m1", "d1", "blur", 1): 0.1,
        ("m1", "d1", "blur", 2): 0.2,
        ("m1", "d2", "clean", 0): 0.1,
        ("m1", "d2", "noise", 1): 0.4,
    }
    rows = [(*cell, 0, int(i < round(10 * error))) for cell, error in errors.items() for i in range(10)]
    examples = pd.DataFrame(rows, columns=["model", "dataset", "corruption", "severity", "reference", "prediction"])
    # d1: CE = (.1+.2)/(.2+.4), RelCE = (0+.1)/(.1+.3), clean .1/.1; d2: CE = .4/.5, RelCE = .3/.3, clean .1/.2
    by_hand = {
        "m1": {
            "mce/d1": 50.0,
            "mce/d2": 80.0,
            "mce": 65.0,
            "mce/A": 65.0,
            "rel_mce/d1": 25.0,
            "rel_mce/d2": 100.0,
            "rel_mce": 62.5,
            "clean_err/d1": 100.0,
            "clean_err/d2": 50.0,
            "clean_err": 75.0,
            "mean_err/d1": 15.0,
            "mean_err/d2": 40.0,
            "mean_err": 27.5,
        },
        "ref": {"mce": 100.0, "rel_mce": 100.0, "clean_err": 100.0, "mean_err": 40.0},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)  # the example has no undefined ratio
        expected = mce_table(results_from_predictions(examples), reference="ref", collections={"A": ["d1", "d2"]})
    inputs = {
        "path": str(MCE_SPACE),
        "predictions": examples.prediction.tolist(),
        "references": examples.reference.tolist(),
        "dataset": examples.dataset.tolist(),
        "corruption": examples.corruption.tolist(),
        "severity": examples.severity.tolist(),
        "model": examples.model.tolist(),
        "reference_model": "ref",
        "collections": {"A": ["d1", "d2"]},
    }
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_MODULES_CACHE": str(tmp_path / "hf" / "modules"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_COMPUTE],
        check=False,
        input=json.dumps(inputs),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["reference_model"] == "ref"
    assert set(out["table"]) == {"ref", "m1"}
    for model, values in by_hand.items():
        for column, value in values.items():
            assert out["table"][model][column] == pytest.approx(value, abs=1e-9), (model, column)
    for model, column in itertools.product(("ref", "m1"), expected.columns):  # and every other column as the library
        assert out["table"][model][column] == pytest.approx(expected.loc[model, column], abs=1e-12), (model, column)
    assert out["table"]["ref"]["mce"] == 100.0
    assert (tmp_path / "hf" / "modules").is_dir()  # the module was cached in the temporary HF_HOME


_BAD_INPUTS = """
import json, sys, warnings
import evaluate
warnings.simplefilter("ignore")
inputs = json.load(sys.stdin)
module = evaluate.load(inputs.pop("path"))
messages = {}
for name, (field, index, value) in inputs.pop("cases").items():
    case = {key: list(values) for key, values in inputs.items() if key != "reference_model"}
    case[field][index] = value
    try:
        module.compute(**case, reference_model=inputs["reference_model"])
        messages[name] = None
    except Exception as error:
        messages[name] = f"{type(error).__name__}: {error}"
try:
    module.add(prediction=0, reference=0, dataset="d", corruption="blur", severity=2.5, model="ref")
except Exception as error:
    messages["add"] = f"{type(error).__name__}: {error}"
print(json.dumps(messages))
"""


def test_evaluate_module_refuses_bad_inputs_naming_the_field(tmp_path):
    require("evaluate")
    cells = [("clean", 0), ("clean", 0), ("blur", 1), ("blur", 2)]
    inputs = {
        "path": str(MCE_SPACE),
        "predictions": [0, 1, 1, 0] * 2,
        "references": [0, 1, 0, 1] * 2,
        "dataset": ["d"] * 8,
        "corruption": [c for c, _ in cells] * 2,
        "severity": [s for _, s in cells] * 2,
        "model": ["a"] * 4 + ["ref"] * 4,
        "reference_model": "ref",
        "cases": {
            "seven": ["severity", 2, 7],
            "minus_one": ["severity", 3, -1],
            "two_and_a_half": ["severity", 2, 2.5],
            "none_label": ["references", 1, None],
            "nan_prediction": ["predictions", 5, float("nan")],
        },
    }
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_MODULES_CACHE": str(tmp_path / "hf" / "modules"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", _BAD_INPUTS],
        check=False,
        input=json.dumps(inputs, allow_nan=True),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    messages = json.loads(done.stdout.strip().splitlines()[-1])
    assert messages["seven"].startswith("ValueError: severity[2] = 7: severity must be an integer 1..5")
    assert messages["minus_one"].startswith("ValueError: severity[3] = -1:")
    assert messages["two_and_a_half"].startswith("ValueError: severity[2] = 2.5:")  # not cast to 2
    assert messages["none_label"].startswith("ValueError: references[1] = None: missing")
    assert messages["nan_prediction"].startswith("ValueError: predictions[5] = nan: missing")
    assert messages["add"].startswith("ValueError: severity[0] = 2.5:")
