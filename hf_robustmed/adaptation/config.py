"""The training configuration of RobustMedCLIP: one dataclass, its defaults the paper's recipe (SPEC §7.3).

Each field carries its help text (``metadata["help"]``), from which the command line is generated; a YAML file
gives the same keys (``configs/robustmedclip*.yaml``) and command-line flags override it.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIOMEDCLIP = "biomedclip"
PAPER_DATASETS = (
    "aml",
    "fundus",
    "mammo_calc",
    "mammo_mass",
    "pneumonia",
    "oct",
    "pbc",
    "bloodmnist",
    "breastmnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
)
SELECTIONS = ("val_remainder", "last", "test")
QKV_TARGET = r"visual\.trunk\.blocks\.\d+\.attn\.qkv"


@dataclass
class TrainConfig:
    """RobustMedCLIP training settings (defaults: the paper's recipe with PEFT LoRA)."""

    benchmarks: list[str] = field(
        default_factory=list,
        metadata={"help": "benchmark folders or Hub dataset repos whose clean configs hold the training datasets"},
    )
    output_dir: str = field(default="robustmedclip", metadata={"help": "adapter folder to write (created)"})
    datasets: list[str] = field(
        default_factory=lambda: list(PAPER_DATASETS),
        metadata={
            "help": "datasets of the joint label space, in order (those absent from the benchmarks are an error)"
        },
    )
    split: str = field(default="validation", metadata={"help": "the split the few-shot pool is drawn from"})
    fraction: float | None = field(
        default=None,
        metadata={
            "help": "stratified fraction of the pool per dataset (paper: 0.1, 0.3, 0.75, 1.0; without shots: 0.1)"
        },
    )
    shots: int | None = field(default=None, metadata={"help": "K images per class instead of a fraction"})
    base_model: str = field(default=BIOMEDCLIP, metadata={"help": "open_clip base model (registry name or spec)"})
    rank: int = field(default=16, metadata={"help": "LoRA rank r"})
    alpha: float | None = field(default=None, metadata={"help": "LoRA alpha (default: the rank, i.e. scale 1)"})
    dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    target_modules: str = field(
        default=QKV_TARGET, metadata={"help": "regex of the module names that get LoRA, matched against the full name"}
    )
    epochs: int = field(default=20, metadata={"help": "training epochs"})
    batch_size: int = field(
        default=256, metadata={"help": "images per optimiser step, over all processes and accumulation steps"}
    )
    gradient_accumulation: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    lr: float = field(default=1e-4, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    temperature: float = field(default=1.0, metadata={"help": "logits = image·text / temperature"})
    normalize_image_features: bool = field(
        default=False,
        metadata={"help": "L2-normalise image features in the loss (the paper does not; then lower the temperature)"},
    )
    train_template: str = field(
        default="a medical image of {c} belonging to {d}",
        metadata={"help": "training prompt ({c} class, {d} dataset); the paper's differs from its eval prompt"},
    )
    eval_template: str = field(
        default="a medical image of a {c} belonging to {d}",
        metadata={"help": "zero-shot prompt used for model selection"},
    )
    selection: str = field(
        default="val_remainder",
        metadata={
            "help": "model selection: val_remainder (pool rows not trained on), last, or test (the paper's: leaks)"
        },
    )
    selection_max_per_dataset: int = field(
        default=512, metadata={"help": "cap on selection images per dataset (a seeded stratified subset)"}
    )
    patience: int | None = field(
        default=None,
        metadata={"help": "stop after this many epochs without improvement (default: unset, every epoch runs)"},
    )
    seed: int = field(default=42, metadata={"help": "seed of sampling, augmentation, initialisation, data order"})
    mixed_precision: str = field(default="no", metadata={"help": "no, bf16 or fp16 (through accelerate)"})
    num_workers: int = field(default=0, metadata={"help": "data-loading worker processes per training process"})
    eval_batch_size: int = field(default=256, metadata={"help": "images per forward pass in selection"})
    log_every: int = field(default=10, metadata={"help": "optimiser steps between log lines"})
    augment: str | None = field(
        default=None,
        metadata={
            "help": "corruption augmentation of the training images (RandomCorruption, keyed by seed, epoch, row): "
            "seen (the held-out protocol's seen families, noise and digital), all, or corruption names "
            "(comma-separated); unset: clean images, the paper's recipe"
        },
    )
    augment_suite: str = field(
        default="auto",
        metadata={
            "help": "parameters of the augmentation: auto (each dataset's own, medmnist-c/<flag> for MedMNIST "
            "datasets, imagenet-c otherwise) or one suite name"
        },
    )
    augment_continuous: bool = field(
        default=True,
        metadata={
            "help": "draw a continuous intensity between severities 1 and 5 (as AugMedMNISTC), else severities 1..5"
        },
    )
    augment_p_clean: float | None = field(
        default=None,
        metadata={"help": "probability of leaving a training image clean (default: unset, 1/(n+1) for n corruptions)"},
    )

    def __post_init__(self) -> None:
        if self.fraction is not None and self.shots is not None:
            raise ValueError("give a fraction or a number of shots, not both")
        if self.fraction is None and self.shots is None:
            self.fraction = 0.1
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; valid: {', '.join(SELECTIONS)}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        for name in ("rank", "epochs", "batch_size", "gradient_accumulation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self._check_augment()

    def _check_augment(self) -> None:
        from ..corruptions import get_suite

        if self.augment is not None and not str(self.augment).strip(" ,"):
            raise ValueError("augment is empty: give seen, all or corruption names, or leave it unset")
        if self.augment_suite != "auto":
            get_suite(self.augment_suite)  # raises on an unknown suite
        if self.augment_p_clean is not None and not 0 <= self.augment_p_clean <= 1:
            raise ValueError(f"augment_p_clean must be in [0, 1], got {self.augment_p_clean}")

    @property
    def lora_alpha(self) -> float:
        return self.rank if self.alpha is None else self.alpha

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Reads a YAML config; ``overrides`` (e.g. from the command line) win. Unknown keys are an error."""
        import yaml

        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a training config is a mapping of settings")
        return cls.from_dict({**values, **overrides}, source=str(path))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**values)

    def to_yaml(self, path: str | Path) -> Path:
        import yaml

        from ..files import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return Path(path)


def _csv_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _default_text(f: dataclasses.Field) -> str:
    """The field's default as the help shows it: lists comma-joined, ``None`` as "unset"."""
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return "unset" if value is None else str(value)


def _field_help(f: dataclasses.Field) -> str:
    """The field's help with its default; ``%`` escaped for argparse (the help is %-formatted)."""
    text = f.metadata["help"] + (" (comma-separated)" if str(f.type).startswith("list") else "")
    if "default" not in text.lower():
        text = f"{text} (default: {_default_text(f)})"
    return text.replace("%", "%%")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` plus one ``--flag`` per :class:`TrainConfig` field, each help ending with its default.

    Every flag's parsed default is ``None`` (unset), so the YAML file's values stay unless a flag is given. A
    ``bool`` field is an on/off pair (``--normalize-image-features`` / ``--no-normalize-image-features``);
    ``output_dir`` is also ``-o``, the output option of every ``hf-robustmed`` command (``--out`` is accepted).

    Args:
        parser: The parser to add the options to.
    """
    parser.add_argument(
        "--config",
        help="YAML file of settings (configs/robustmedclip.yaml); flags override it "
        "(default: none, the settings below)",
    )
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        if f.name == "output_dir":
            action = parser.add_argument(
                "-o", flag, "--output", "--out", dest=f.name, metavar="DIR", help=_field_help(f)
            )
            action.hidden_aliases = ("--output", "--out")  # shown as -o/--output-dir by hf_robustmed.cli
        elif kind.startswith("list"):
            parser.add_argument(flag, dest=f.name, type=_csv_list, metavar="A,B,...", help=_field_help(f))
        elif kind == "bool":
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=_field_help(f)
            )
        else:
            scalar = {"int": int, "float": float, "str": str}[kind.split(" |")[0]]
            parser.add_argument(flag, dest=f.name, type=scalar, help=_field_help(f))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config of a parsed command line: the YAML file (if any) overridden by the flags given."""
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    for given, other in (("shots", "fraction"), ("fraction", "shots")):  # a flag replaces the file's other mode
        if given in overrides and other not in overrides:
            overrides[other] = None
    if args.config:
        return TrainConfig.from_yaml(args.config, **overrides)
    return TrainConfig.from_dict(overrides, source="command line")
