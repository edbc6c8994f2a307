"""The hf-robustmed command line: corrupt, corruptions, suites, gallery, and its error messages."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import require, textured_image
from PIL import Image

from hf_robustmed.cli import main
from hf_robustmed.corruptions import corrupt, list_corruptions


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "scan.png"
    Image.fromarray(textured_image(64, False)).save(path)
    return path


def test_corrupt_writes_the_engines_output(image_file, tmp_path, capsys):
    out = tmp_path / "out" / "blurred.png"
    code = main(
        [
            "corrupt",
            str(image_file),
            str(out),
            "--corruption",
            "motion_blur",
            "--severity",
            "4",
            "--suite",
            "medmnist-c/octmnist",
            "--seed",
            "3",
            "--key",
            "7",
        ]
    )
    assert code == 0 and out.exists()
    expected = corrupt(np.asarray(Image.open(image_file)), "motion_blur", 4, suite="medmnist-c/octmnist", seed=3, key=7)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    assert not list(out.parent.glob(".*tmp*")), "no temporary file left behind"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--corruption", "nope", "--severity", "1"], "unknown corruption 'nope'"),
        (["--corruption", "pixelate", "--severity", "9"], "severity must be in 1..5"),
        (["--corruption", "pixelate", "--severity", "1", "--suite", "medmnist-c/bogus"], "unknown suite"),
    ],
)
def test_corrupt_rejects_bad_arguments(image_file, tmp_path, capsys, argv, message):
    out = tmp_path / "x.png"
    assert main(["corrupt", str(image_file), str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_corrupt_rejects_broken_images(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["corrupt", str(broken), str(tmp_path / "x.png"), "-c", "pixelate", "-s", "1"]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["corrupt", str(tmp_path / "missing.png"), str(tmp_path / "x.png"), "-c", "pixelate", "-s", "1"]) == 2
    assert "not found" in capsys.readouterr().err


def test_sixteen_bit_input_is_scaled(tmp_path):
    path = tmp_path / "ct.png"
    pixels = np.full((32, 32), 1000, np.uint16)
    pixels[:, 16:] = 5000  # a 12-bit scan: `>> 8` would make it nearly black
    Image.fromarray(pixels).save(path)
    out = tmp_path / "out.png"
    assert main(["corrupt", str(path), str(out), "-c", "contrast", "-s", "1"]) == 0
    result = np.asarray(Image.open(out)).astype(float)
    # min–max scaling → 0 | 255; ImageNet-C contrast c = 0.4 about the mean 0.5 → 0.3·255 | 0.7·255
    assert result.shape == (32, 32)
    assert (np.abs(result[:, :16] - 76.5) <= 1).all() and (np.abs(result[:, 16:] - 178.5) <= 1).all()


def test_corruptions_table_lists_every_corruption_and_parameter(capsys):
    assert main(["corruptions", "--suite", "medmnist-c/pathmnist"]) == 0
    table = capsys.readouterr().out
    for name in list_corruptions("medmnist-c/pathmnist"):
        assert f"| {name} " in table
    assert "(5, 32)" in table and "(17, 25)" in table  # stain deposit and bubble severity-5 parameters
    assert main(["suites"]) == 0
    assert "medimeta-c" in capsys.readouterr().out


def test_gallery_draws_rows_and_columns(tmp_path, image_file):
    out = tmp_path / "grid.png"
    assert main(["gallery", str(image_file), "-o", str(out), "--suite", "medimeta-c", "--tile", "40"]) == 0
    grid = Image.open(out)
    rows = len(list_corruptions("medimeta-c"))
    assert grid.width >= 6 * 40 and grid.height >= rows * 40
    assert (
        main(
            [
                "gallery",
                "-o",
                str(tmp_path / "cells.png"),
                "--sample",
                "cells",
                "--corruptions",
                "bubble,stain_deposit",
                "--suite",
                "medmnist-c/pathmnist",
                "--tile",
                "32",
                "--size",
                "64",
            ]
        )
        == 0
    )


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "hf_robustmed.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "hf-robustmed" in done.stdout


# --------------------------------------------------------------------------------------------------------------------
# The parser: one output convention, help and defaults for every option (issue #12, items 8 and 9)
# --------------------------------------------------------------------------------------------------------------------


def _subparsers():
    import argparse

    from hf_robustmed.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def _visible(action) -> list[str]:
    return [s for s in action.option_strings if s not in getattr(action, "hidden_aliases", ())]


def test_every_command_spells_its_output_option_the_same_way():
    from hf_robustmed.cli import OUTPUT_SPELLINGS

    with_output = {}
    for name, sub in _subparsers().items():
        for action in sub._actions:
            if set(action.option_strings) & set(OUTPUT_SPELLINGS):
                with_output[name] = action
                expected = ["-o", "--output"] if name == "gallery" else ["-o", "--output-dir"]
                assert _visible(action) == expected, name
                assert set(action.option_strings) == set(OUTPUT_SPELLINGS), name  # the old spellings still parse
                options = sub.format_help().split("options:")[1]
                hidden = [s for s in OUTPUT_SPELLINGS if s not in expected]
                assert not any(f"{old} " in options or f"{old}," in options for old in hidden), name
    assert set(with_output) >= {
        "build",
        "evaluate",
        "demo",
        "gallery",
        "describe",
        "report",
        "train",
        "reproduce",
        "convert-rmc",
    }


@pytest.mark.parametrize("spelling", ["-o", "--output-dir", "--out", "--output"])
def test_old_output_spellings_are_aliases(spelling):
    from hf_robustmed.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["report", "r.csv", spelling, "x"]).output == "x"
    assert parser.parse_args(["build", "medmnist-c", "--source-root", "s", spelling, "x"]).out == "x"
    assert parser.parse_args(["train", spelling, "x"]).output_dir == "x"
    assert parser.parse_args(["reproduce", spelling, "x"]).out == "x"


def test_every_option_has_help_and_shows_its_default():
    import argparse

    from hf_robustmed.cli import HelpFormatter

    for name, sub in _subparsers().items():
        formatter = HelpFormatter(name)
        one_of = {a for group in sub._mutually_exclusive_groups if group.required for a in group._group_actions}
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings or action in one_of:
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.option_strings}: no help"
            if action.required or action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):
                continue  # required, or an on/off flag
            shown = formatter._get_help_string(action).lower()
            assert "default" in shown, f"{name} {action.option_strings}: no default"


def test_train_help_shows_defaults_and_a_real_on_off_flag(capsys):
    from hf_robustmed.adaptation.config import TrainConfig, config_from_args
    from hf_robustmed.cli import build_parser

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "(default: 16)",
        "(default: 20)",
        "(default: 256)",
        "(default: 0.0001)",
        "(default: off)",
        "(default: val_remainder)",
        "(default: robustmedclip)",
    ):
        assert default in text
    assert "-o DIR, --output-dir DIR" in text and "--normalize-image-features, --no-normalize-image-features" in text
    parser = build_parser()
    on = parser.parse_args(["train", "--normalize-image-features", "--benchmarks", "a,b"])
    assert on.normalize_image_features is True and on.benchmarks == ["a", "b"]
    assert parser.parse_args(["train", "--no-normalize-image-features"]).normalize_image_features is False
    unset = parser.parse_args(["train"])
    assert not hasattr(unset, "normalize_image_features")  # unset: a YAML file's value stays
    assert "--output_dir" not in text and "--normalize_image_features" not in text  # the dashed spelling only
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--normalize-image-features", "true"])  # an on/off flag takes no value
    assert config_from_args(on).normalize_image_features and not TrainConfig().normalize_image_features


def test_without_transformers_train_says_what_it_needs_and_other_commands_work(monkeypatch, capsys):
    from hf_robustmed.adaptation import config

    def missing(parser):
        raise ImportError("the training command line needs transformers: pip install 'hf-robustmed[adapt]'")

    monkeypatch.setattr(config, "add_config_arguments", missing)
    assert main(["train"]) == 2
    assert "pip install 'hf-robustmed[adapt]'" in capsys.readouterr().err
    assert main(["corruptions"]) == 0 and "gaussian_noise" in capsys.readouterr().out


def test_convert_rmc_takes_the_output_folder_as_an_option(capsys):
    from hf_robustmed.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["convert-rmc", "model.pth", "-o", "out"]).out == "out"
    assert parser.parse_args(["convert-rmc", "model.pth", "out"]).legacy_out == "out"  # the old positional
    assert main(["convert-rmc", "model.pth"]) == 2
    assert "needs the adapter folder to write: -o/--output-dir" in capsys.readouterr().err


def test_build_hints_at_size_when_only_other_sizes_are_there(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    np.savez(
        tmp_path / "src" / "bloodmnist.npz",
        test_images=np.zeros((2, 28, 28, 3), np.uint8),
        test_labels=np.zeros((2, 1), int),
    )
    argv = [
        "build",
        "medmnist-c",
        "--source-root",
        str(tmp_path / "src"),
        "--datasets",
        "bloodmnist",
        "-o",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bloodmnist_224.npz not found" in err and "28 px (bloodmnist.npz); pass --size 28" in err
    (tmp_path / "src" / "bloodmnist.npz").unlink()
    assert main(argv) == 2
    assert "--size" not in capsys.readouterr().err  # nothing of another size: no hint


def test_build_choices_are_the_benchmark_registry(capsys):
    from hf_robustmed.data.benchmarks import BENCHMARKS, BenchmarkDefinition, medmnist_c_jobs

    def choices():
        build = _subparsers()["build"]
        return next(a for a in build._actions if a.dest == "benchmark").choices

    assert list(choices()) == list(BENCHMARKS) and "image-dataset" in choices()
    BENCHMARKS["extra-c"] = BenchmarkDefinition("Extra-C", medmnist_c_jobs, "native", "a registered one")
    try:
        assert "extra-c" in choices()
    finally:
        del BENCHMARKS["extra-c"]
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--push-to-hub ORG/NAME" in text and "(default: build only)" in text


def test_evaluate_source_choices_are_the_registered_clean_sources(monkeypatch):
    from hf_robustmed.data.benchmarks import BENCHMARKS, BenchmarkDefinition, medmnist_c_jobs

    def choices():
        return next(a for a in _subparsers()["evaluate"]._actions if a.dest == "source").choices

    assert choices() == ["medmnist-c", "medimeta-c", "image-dataset"]  # not the imported releases
    monkeypatch.setitem(BENCHMARKS, "extra-c", BenchmarkDefinition("Extra-C", medmnist_c_jobs, "native"))
    monkeypatch.setitem(
        BENCHMARKS, "extra-c-release", BenchmarkDefinition("Extra-C", medmnist_c_jobs, "native", corrupts=False)
    )
    assert "extra-c" in choices() and "extra-c-release" not in choices()


def test_build_pushes_what_it_built_with_push_to_hub(tmp_path, monkeypatch, capsys):
    from data_fixtures import write_medmnist

    from hf_robustmed import hub

    pushed = []
    monkeypatch.setattr(hub, "push_folder", lambda folder, repo_id: pushed.append((folder, repo_id)) or "commit-url")
    (tmp_path / "src").mkdir()
    argv = ["build", "medmnist-c", "--source-root", str(tmp_path / "src"), "--datasets", "pneumoniamnist"]
    argv += ["--corruptions", "pixelate", "--severities", "1", "--size", "28", "-o", str(tmp_path / "out")]
    assert main([*argv, "--push-to-hub", "me/Bench"]) == 2  # no sources: nothing built, nothing pushed
    assert not pushed
    write_medmnist(tmp_path / "src", "pneumoniamnist", rgb=False, classes=2)
    assert main([*argv, "--push-to-hub", "me/Bench"]) == 0
    assert pushed == [(tmp_path / "out", "me/Bench")] and "commit-url" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*argv, "--push-to-hub"])
    assert "--push-to-hub: expected one argument" in capsys.readouterr().err


def test_adapter_card_without_repo_id_names_the_local_folder(tmp_path, monkeypatch, capsys):
    import hf_robustmed.adaptation.card as card

    seen = {}
    monkeypatch.setattr(card, "update_adapter_card", lambda folder, **kw: seen.update(kw) or tmp_path / "README.md")
    assert main(["adapter-card", str(tmp_path / "runs" / "adapter")]) == 0
    assert seen["repo_id"] == (tmp_path / "runs" / "adapter").as_posix()  # loadable as written, not "<org>/adapter"
    assert main(["adapter-card", str(tmp_path / "runs" / "adapter"), "--repo-id", "me/RobustMedCLIP"]) == 0
    assert seen["repo_id"] == "me/RobustMedCLIP"


def test_evaluate_and_the_accelerate_module_end_with_the_same_summary(tmp_path, monkeypatch, capsys):
    require("accelerate")
    import pandas as pd

    import hf_robustmed.evaluation as evaluation

    rows = [
        ("m", "d", "clean", 0, "accuracy", 0.8, 10, "pretrained"),
        ("m", "d", "blur", 1, "accuracy", 0.6, 10, "pretrained"),
    ]
    frame = pd.DataFrame(
        rows, columns=["model", "dataset", "corruption", "severity", "metric", "value", "n", "weights"]
    )
    monkeypatch.setattr(evaluation, "evaluate", lambda *args, **kwargs: frame)
    argv = ["--models", "m", "--benchmark", str(tmp_path / "bench"), "-o", str(tmp_path / "out")]
    assert main(["evaluate", *argv]) == 0
    from_cli = capsys.readouterr().out
    from hf_robustmed.evaluation.__main__ import main as module_main

    assert module_main(argv) == 0  # what `accelerate launch -m hf_robustmed.evaluation` runs
    assert capsys.readouterr().out == from_cli
    assert "results.parquet (2 rows)" in from_cli and "m: clean accuracy 0.800, corrupted 0.600" in from_cli


def test_a_command_line_configures_only_its_command(monkeypatch):
    """``hf-robustmed corruptions`` must not pay for train's options (transformers' HfArgumentParser)."""
    from hf_robustmed import cli

    configured = []
    for name, (help_text, configure, fn) in list(cli._COMMANDS.items()):
        monkeypatch.setitem(
            cli._COMMANDS, name, (help_text, lambda p, n=name, c=configure: configured.append(n) or c(p), fn)
        )
    assert main(["corruptions"]) == 0
    assert configured == ["corruptions"]
    configured.clear()
    cli.build_parser()
    assert configured == list(cli._COMMANDS)  # the full parser (for help checks) still has every command's options
