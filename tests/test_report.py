"""The robustness report: Markdown tables, leaderboard and figures from long-format results, and its CLI."""

import numpy as np
import pandas as pd
import pytest
from conftest import require  # noqa: E402
from PIL import Image

from hf_robustmed.cli import main
from hf_robustmed.metrics import RESULT_COLUMNS, UndefinedMetricWarning, mce_table
from hf_robustmed.report import LEADERBOARD_COLUMNS, REPORT_FILES, load_results, write_report

require("matplotlib")

REFERENCE = "clip-vit-b16"
CORRUPTIONS = {
    "bloodmnist": ["pixelate", "defocus_blur", "bubble"],
    "chestmnist": ["gaussian_noise", "pixelate"],
    "dermamnist": ["motion_blur", "contrast_down", "pixelate"],
}
# model -> (clean accuracy, accuracy lost per severity step)
MODELS = {REFERENCE: (0.80, 0.050), "medclip": (0.85, 0.030), "biomedclip": (0.70, 0.070)}


def synthetic_results(datasets: tuple[str, ...] = tuple(CORRUPTIONS)) -> pd.DataFrame:
    """Accuracy falling with severity (plus balanced-accuracy rows the report must ignore)."""
    rows = []
    for model, (clean, slope) in MODELS.items():
        for d, dataset in enumerate(datasets):
            rows.append((model, dataset, "clean", 0, "accuracy", clean - 0.02 * d, 500))
            for c, corruption in enumerate(CORRUPTIONS[dataset]):
                for severity in range(1, 6):
                    value = clean - 0.02 * d - slope * severity * (1 + 0.3 * c)
                    rows.append((model, dataset, corruption, severity, "accuracy", max(value, 0.0), 500))
                    rows.append((model, dataset, corruption, severity, "balanced_accuracy", 0.5, 500))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def hand_errors(model: str, dataset: str) -> list[list[float]]:
    """The top-1 errors ``synthetic_results`` gives, per corruption then severity, from its formula (no frame)."""
    clean, slope = MODELS[model]
    d = list(CORRUPTIONS).index(dataset)
    return [
        [1 - max(clean - 0.02 * d - slope * s * (1 + 0.3 * c), 0.0) for s in range(1, 6)]
        for c in range(len(CORRUPTIONS[dataset]))
    ]


def hand_mce(model: str, dataset: str | None = None) -> float:
    """mCE x 100 by its definition (SPEC §6): per dataset the mean over corruptions of Σ_s E_model / Σ_s E_reference,
    then the unweighted mean over datasets."""
    if dataset is None:
        return float(np.mean([hand_mce(model, name) for name in CORRUPTIONS]))
    pairs = zip(hand_errors(model, dataset), hand_errors(REFERENCE, dataset), strict=True)
    return 100 * float(np.mean([sum(ours) / sum(reference) for ours, reference in pairs]))


def hand_corrupted_accuracy(model: str) -> float:
    """The mean over datasets of the mean corrupted accuracy over (corruption, severity), in %."""
    return 100 - 100 * float(np.mean([np.mean(hand_errors(model, name)) for name in CORRUPTIONS]))


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return synthetic_results()


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "nested" / "out"
    modalities = {"bloodmnist": "microscopy", "chestmnist": "x-ray", "dermamnist": "dermatoscopy"}
    return write_report(results, out, collections={"MedMNIST-C": list(CORRUPTIONS)}, modalities=modalities)


def test_report_files_are_written_atomically(report):
    assert report.name == "report.md"
    assert sorted(p.name for p in report.parent.iterdir()) == sorted(REPORT_FILES), "no temporary file left"


def test_leaderboard_is_sorted_by_mce_with_the_reference_at_100(report):
    board = pd.read_csv(report.parent / "leaderboard.csv")
    assert list(board.columns) == list(LEADERBOARD_COLUMNS)
    assert board["mce"].is_monotonic_increasing
    assert list(board["model"]) == sorted(MODELS, key=hand_mce) == ["medclip", REFERENCE, "biomedclip"]
    ref = board.set_index("model").loc[REFERENCE]
    assert ref["mce"] == ref["clean_err"] == ref["rel_mce"] == pytest.approx(100)
    for model in ("medclip", "biomedclip"):
        row = board.set_index("model").loc[model]
        assert row["mce"] == pytest.approx(hand_mce(model))
        assert row["corrupted_acc"] == pytest.approx(hand_corrupted_accuracy(model))
    assert board.set_index("model").at["medclip", "clean_acc"] == pytest.approx(100 * (0.85 - 0.02))  # 85, 83, 81


def test_report_tables_give_the_mce_of_its_definition(report):
    text = report.read_text()
    assert f"Reference model: `{REFERENCE}`" in text
    assert "left out of the means: 0 CE, 0 relative CE, 0 clean error" in text
    for model in MODELS:
        row = next(line for line in text.splitlines() if line.startswith(f"| {model} |"))  # the leaderboard row
        assert f"| {hand_mce(model):.1f} (8 of 8) |" in row  # with the pairs it rests on
    assert f"| {REFERENCE} | unknown | 100.0 | 100.0 (8 of 8) | 100.0 (8 of 8) |" in text  # no weights column: unknown
    by_mce = sorted(MODELS, key=hand_mce)  # the column order
    dermamnist = " | ".join(f"{hand_mce(model, 'dermamnist'):.1f}" for model in by_mce)
    assert f"| dermamnist | 3 of 3 | {dermamnist} |" in text
    for heading in (
        "## Per dataset",
        "## Per collection",
        "## Per modality",
        "| x-ray | chestmnist |",
        "| MedMNIST-C | bloodmnist, chestmnist, dermamnist |",
        "### chestmnist",
    ):
        assert heading in text
    # the reference's bubble accuracy at severity 5 on bloodmnist: 80 - 5 x 5 x 1.6
    assert "| bubble | clip-vit-b16 | 72.0 | 64.0 | 56.0 | 48.0 | 40.0 | 56.0 |" in text
    for name in REPORT_FILES[2:]:
        assert f"]({name})" in text


def test_figures_are_pngs(report):
    for name in REPORT_FILES[2:]:
        with Image.open(report.parent / name) as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_cli_with_two_datasets_and_an_undefined_ratio(tmp_path, capsys):
    results = synthetic_results(("bloodmnist", "chestmnist"))
    perfect = (results["model"] == "medclip") & (results["dataset"] == "chestmnist") & (results["severity"] == 0)
    results.loc[perfect, "value"] = 1.0  # the reference's clean error is 0: CleanErr of chestmnist is undefined
    source = tmp_path / "results.parquet"
    results.to_parquet(source)
    out = tmp_path / "report"
    with pytest.warns(UndefinedMetricWarning, match="CleanErr undefined for chestmnist"):
        assert main(["report", str(source), "-o", str(out), "--reference", "medclip"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"wrote {out / name}" for name in REPORT_FILES]
    assert all((out / name).is_file() for name in REPORT_FILES)
    text = (out / "report.md").read_text()
    assert "Reference model: `medclip`" in text and "0 CE, 0 relative CE, 1 clean error" in text
    assert pd.read_csv(out / "leaderboard.csv").iloc[0]["model"] == "medclip"  # the best of the synthetic models


def test_csv_results_are_read(tmp_path, results):
    source = tmp_path / "results.csv"
    results.to_csv(source, index=False)
    pd.testing.assert_frame_equal(load_results(source), results)


def test_missing_columns_and_bad_files_raise(tmp_path, results, capsys):
    with pytest.raises(ValueError, match="value, n"):
        write_report(results.drop(columns=["value", "n"]), tmp_path / "out")
    with pytest.raises(ValueError, match=r"\.parquet or \.csv"):
        write_report(tmp_path / "results.json", tmp_path / "out")
    with pytest.raises(ValueError, match="not in the results: retinamnist"):
        write_report(results, tmp_path / "out", modalities={"retinamnist": "fundus"})
    assert not (tmp_path / "out").exists(), "nothing is written on invalid input"
    results.drop(columns=["metric"]).to_csv(tmp_path / "bad.csv", index=False)
    assert main(["report", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "out")]) == 2
    assert "lack column(s) metric" in capsys.readouterr().err


def _no_drop_but_one(results: pd.DataFrame) -> pd.DataFrame:
    """The reference loses no accuracy under any corruption but bloodmnist/pixelate: relative CE is defined on
    1 of the 8 pairs only."""
    results = results.copy()
    ref = (results["model"] == REFERENCE) & (results["metric"] == "accuracy")
    for dataset in CORRUPTIONS:
        clean = results.loc[ref & (results["dataset"] == dataset) & (results["corruption"] == "clean"), "value"].iloc[0]
        flat = ref & (results["dataset"] == dataset) & (results["corruption"] != "clean")
        if dataset == "bloodmnist":
            flat &= results["corruption"] != "pixelate"
        results.loc[flat, "value"] = clean
    return results


def test_a_relative_mce_on_under_half_of_its_pairs_is_not_headlined(tmp_path):
    results = _no_drop_but_one(synthetic_results())
    with pytest.warns(UndefinedMetricWarning):
        report = write_report(results, tmp_path / "out")
    with pytest.warns(UndefinedMetricWarning):
        table = mce_table(results, REFERENCE)
    assert table.at["medclip", "rel_ce_pairs"] == 1 and table.at["medclip", "pairs"] == 8
    assert table.at["medclip", "ce_pairs"] == 8
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv").set_index("model")
    assert board["rel_mce"].isna().all(), "a mean of 1 of 8 pairs is not a headline figure"
    assert (board["rel_ce_pairs"] == 1).all() and (board["pairs"] == 8).all()
    assert board.at["medclip", "mce"] == pytest.approx(table.at["medclip", "mce"])  # 8 of 8: shown
    text = report.read_text()
    medclip = next(line for line in text.splitlines() if line.startswith("| medclip |"))
    assert "| n/a (1 of 8) |" in medclip and f"| {table.at['medclip', 'mce']:.1f} (8 of 8) |" in medclip
    assert "relative mCE on 1 of 8" in text


def test_stand_in_rows_are_marked_everywhere(tmp_path):
    results = synthetic_results()
    results["weights"] = ["stand-in" if m == "biomedclip" else "pretrained" for m in results["model"]]
    report = write_report(results, tmp_path / "out", collections={"MedMNIST-C": list(CORRUPTIONS)})
    text = report.read_text()
    assert "**Stand-in weights**: `biomedclip`" in text
    assert any(line.startswith("| biomedclip (stand-in) | stand-in |") for line in text.splitlines())
    assert any(line.startswith("| medclip | pretrained |") for line in text.splitlines())
    per_dataset = text[text.index("## Per dataset") : text.index("## Per collection")]
    assert "biomedclip (stand-in)" in per_dataset
    assert "| pixelate | biomedclip (stand-in) |" in text
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv").set_index("model")
    assert board.at["biomedclip", "weights"] == "stand-in" and board.at["medclip", "weights"] == "pretrained"


def test_weights_of_older_results_are_unknown():
    from hf_robustmed.report import leaderboard, model_weights

    results = synthetic_results()
    assert set(model_weights(results).values()) == {"unknown"}
    assert (leaderboard(results, REFERENCE)["weights"] == "unknown").all()


def test_a_failed_write_leaves_no_report(tmp_path, monkeypatch, results):
    import errno

    import hf_robustmed.report as report_module

    def full_disk(fig, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report_module, "render_png", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_report(results, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "no half-written report, no empty folder"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("kept")
    with pytest.raises(OSError):
        write_report(results, tmp_path / "old")
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["notes.txt"]


def test_report_gives_seen_and_held_out_mce_of_an_augmented_adapter(tmp_path, capsys):
    import json

    source = tmp_path / "results.parquet"
    synthetic_results().to_parquet(source)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "training_summary.json").write_text(json.dumps({"seen_corruptions": ["pixelate", "gaussian_noise"]}))
    assert main(["report", str(source), "-o", str(tmp_path / "report"), "--seen-from", f"medclip={adapter}"]) == 0
    table = pd.read_csv(tmp_path / "report" / "seen_held_out.csv", index_col=0)
    assert list(table.index) == ["medclip"]
    # seen: pixelate (3 datasets) + gaussian_noise (chestmnist); held out: the other four pairs
    assert (table.loc["medclip", "pairs_seen"], table.loc["medclip", "pairs_held_out"]) == (4, 4)
    assert table.loc["medclip", "mce_seen"] != table.loc["medclip", "mce_held_out"]
    assert "held-out pairs" in capsys.readouterr().out
    assert main(["report", str(source), "-o", str(tmp_path / "r2"), "--seen-from", f"nosuch={adapter}"]) == 2
