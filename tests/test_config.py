"""The training config's command line: transformers' HfArgumentParser with the hf-robustmed conventions."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from conftest import require

require("transformers")

from hf_robustmed.adaptation.config import (  # noqa: E402
    TrainConfig,
    add_config_arguments,
    config_argument_parser,
    config_from_args,
    train_argument_parser,
)


@dataclass
class Throwaway:
    """Field types the old hand-written builder could not handle (it matched on ``str(field.type)``)."""

    root: Path = field(default=Path("data"), metadata={"help": "input folder"})
    mode: Literal["fast", "exact"] = field(default="fast", metadata={"help": "speed or exactness"})
    size: tuple[int, int] = field(default=(224, 224), metadata={"help": "height and width"})
    scales: tuple[float, ...] = field(default=(1.0,), metadata={"help": "scales"})
    names: list[str] = field(default_factory=list, metadata={"help": "names"})
    limit: int | None = field(default=None, metadata={"help": "cap"})
    verbose: bool = field(default=False, metadata={"help": "talk"})
    cache: bool = field(default=True, metadata={"help": "reuse results"})
    output_dir: str = field(default="out", metadata={"help": "where"})


def test_path_literal_tuple_and_list_fields_parse():
    parser = config_argument_parser(Throwaway, prog="throwaway")
    (parsed,) = parser.parse_args_into_dataclasses(
        ["--root", "a/b", "--mode", "exact", "--size", "3", "4", "--scales", "0.5,2", "--names", "x,y", "z"]
        + ["--limit", "7", "--verbose", "--no-cache", "--output-dir", "o"]
    )
    assert parsed == Throwaway(Path("a/b"), "exact", (3, 4), (0.5, 2.0), ["x", "y", "z"], 7, True, False, "o")
    assert isinstance(parsed.root, Path) and isinstance(parsed.size, tuple)
    assert parser.parse_args_into_dataclasses([]) == (Throwaway(),)  # options not given keep their defaults
    assert [f.type for f in dataclasses.fields(Throwaway)][:3] == [
        "Path",
        "Literal['fast', 'exact']",
        "tuple[int, int]",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--mode", "slow"],  # not one of the Literal's values
        ["--size", "1,2,3"],  # a fixed-length tuple
        ["--limit", "many"],
        ["--verbose", "true"],  # an on/off flag takes no value
        ["--output_dir", "o"],  # only the dashed spelling
    ],
)
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config_argument_parser(Throwaway, prog="throwaway").parse_args(argv)
    assert exit_info.value.code == 2 and "error:" in capsys.readouterr().err


def test_help_states_each_default_and_the_choices():
    text = " ".join(config_argument_parser(Throwaway, prog="throwaway").format_help().split())
    for shown in (
        "--root ROOT input folder (default: data)",
        "--mode {fast,exact} speed or exactness (default: fast)",
        "(default: 224,224)",
        "--limit LIMIT cap (default: unset)",
        "--verbose, --no-verbose talk (default: off)",
        "--cache, --no-cache reuse results (default: on)",
    ):
        assert shown in text
    assert "--output_dir" not in text and "--no_cache" not in text


def test_flags_override_the_yaml_file_only_where_given(tmp_path):
    (tmp_path / "c.yaml").write_text("rank: 8\nepochs: 3\nnormalize_image_features: true\nshots: 4\n")
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    config = config_from_args(parser.parse_args(["--config", str(tmp_path / "c.yaml"), "--epochs", "5"]))
    assert (config.rank, config.epochs, config.normalize_image_features, config.shots) == (8, 5, True, 4)
    config = config_from_args(
        parser.parse_args(["--config", str(tmp_path / "c.yaml"), "--no-normalize-image-features", "--fraction", "1"])
    )
    assert (config.normalize_image_features, config.fraction, config.shots) == (False, 1.0, None)
    assert config_from_args(parser.parse_args(["--selection", "last"])).selection == "last"
    assert config_from_args(parser.parse_args([])) == TrainConfig()
    with pytest.raises(SystemExit):
        parser.parse_args(["--mixed-precision", "fp32"])  # a Literal field: argparse checks the choices


def test_module_help_shows_only_the_canonical_spellings(capsys):
    require("torch")
    from hf_robustmed.adaptation.train import main

    with pytest.raises(SystemExit):
        main(["--help"])  # python -m hf_robustmed.adaptation.train --help
    text = capsys.readouterr().out
    assert "-o DIR, --output-dir DIR" in text and "--normalize-image-features, --no-normalize-image-features" in text
    assert "--out " not in text and "--output " not in text and "--output_dir" not in text
    parser = train_argument_parser("hf_robustmed.adaptation.train", "train")
    for spelling in ("-o", "--output-dir", "--output", "--out"):
        assert config_from_args(parser.parse_args([spelling, "x"])).output_dir == "x"
