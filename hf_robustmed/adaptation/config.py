"""The training configuration of RobustMedCLIP: one dataclass, its defaults the paper's recipe (SPEC §7.3).

Each field carries its help text (``metadata["help"]``); ``transformers.HfArgumentParser`` turns the fields into
command-line options (:func:`add_dataclass_arguments` says where ours differ). A YAML file gives the same keys
(``configs/robustmedclip*.yaml``) and command-line flags override it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
Selection = Literal["val_remainder", "last", "test"]
SELECTIONS = typing.get_args(Selection)
MixedPrecision = Literal["no", "bf16", "fp16"]
OLD_OUTPUT_SPELLINGS = ("--output", "--out")  # accepted for --output-dir, hidden from the help
QKV_TARGET = r"visual\.trunk\.blocks\.\d+\.attn\.qkv"


@dataclass
class TrainConfig:
    """RobustMedCLIP training settings (defaults: the paper's recipe with PEFT LoRA)."""

    benchmarks: list[str] = field(
        default_factory=list,
        metadata={"help": "benchmark folders or Hub dataset repos whose clean configs hold the training datasets"},
    )
    output_dir: str = field(
        default="robustmedclip",
        metadata={"help": "adapter folder to write (created)", "aliases": ["-o"], "metavar": "DIR"},
    )
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
    selection: Selection = field(
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
    mixed_precision: MixedPrecision = field(default="no", metadata={"help": "no, bf16 or fp16 (through accelerate)"})
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
        if self.mixed_precision not in typing.get_args(MixedPrecision):
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


def _element_type(kind: Any, name: str) -> tuple[Any, int | None]:
    """The element type of a ``list[X]``, ``tuple[X, ...]`` or ``tuple[X, X]`` field, and a fixed tuple's length."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is list:
        return args[0], None
    if len(args) == 2 and args[1] is Ellipsis:
        return args[0], None
    if not args or len(set(args)) != 1:
        raise TypeError(f"field {name}: only tuples of one element type can be given on the command line")
    return args[0], len(args)


def _comma_separated(element: Any) -> Any:
    """An argparse ``type`` reading one token as a comma-separated list of ``element`` values."""

    def convert(text: str) -> list[Any]:
        return [element(item.strip()) for item in text.split(",") if item.strip()]

    convert.__name__ = getattr(element, "__name__", "value")  # named in argparse's "invalid ... value" error
    return convert


class _Items(argparse.Action):
    """A list or tuple option whose values are given space- or comma-separated (``--datasets a b``, ``a,b``)."""

    def __init__(self, *args: Any, sequence_type: type = list, length: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sequence_type, self.length = sequence_type, length

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        items = [item for value in values for item in value]
        if self.length is not None and len(items) != self.length:
            raise argparse.ArgumentError(self, f"expected {self.length} values, got {len(items)}")
        setattr(namespace, self.dest, self.sequence_type(items))


def _default_text(f: dataclasses.Field) -> str:
    """The field's default as the help shows it: sequences comma-joined, ``None`` as "unset"."""
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return "unset" if value is None else str(value)


def _field_help(f: dataclasses.Field, sequence: bool) -> str:
    """The field's help with its default; ``%`` escaped for argparse (the help is %-formatted)."""
    text = f.metadata.get("help", "") + (" (space- or comma-separated)" if sequence else "")
    if "default" not in text.lower() and (
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ):
        text = f"{text} (default: {_default_text(f)})"
    return text.replace("%", "%%")


class _Conventions:
    """Stands in for the parser while :class:`~transformers.HfArgumentParser` adds one field's option.

    HfArgumentParser maps the field's type to argparse (``Literal``/``Enum`` to choices, ``Optional[X]`` to ``X``,
    ``list[X]`` to ``nargs="+"``, ``Path`` and other callables to ``type``); its ``add_argument`` call is changed here
    where the ``hf-robustmed`` command line differs:

    - only the dashed spelling (``--output-dir``): HfArgumentParser also registers ``--output_dir``;
    - a ``bool`` is an on/off pair (``--flag``/``--no-flag``) taking no value, where HfArgumentParser's
      ``--flag [true|false]`` takes an optional value;
    - lists and tuples take values space- or comma-separated (``--datasets a,b`` kept working); HfArgumentParser
      passes a tuple's type as the converter of each value, which fails;
    - the parsed default is ``argparse.SUPPRESS`` (a flag not given is absent), so a YAML file's value stays unless
      a flag overrides it; the help states the field's default.
    """

    def __init__(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup, f: dataclasses.Field) -> None:
        self.parser, self.field, self.kind = parser, f, f.type  # the type before HfArgumentParser strips Optional

    def add_argument(self, *strings: str, **kwargs: Any) -> argparse.Action | None:
        if kwargs.get("action") == "store_false":
            return None  # HfArgumentParser's --no_flag complement: the on/off pair below has --no-flag
        kind = _without_none(self.kind)
        sequence = typing.get_origin(kind) in (list, tuple)
        kwargs.update(dest=self.field.name, default=argparse.SUPPRESS, help=_field_help(self.field, sequence))
        if kind is bool:
            for key in ("type", "nargs", "const"):
                kwargs.pop(key, None)
            kwargs["action"] = argparse.BooleanOptionalAction
        elif sequence:
            element, length = _element_type(kind, self.field.name)
            kwargs.update(type=_comma_separated(element), nargs="+", action=_Items, length=length)
            kwargs["sequence_type"] = typing.get_origin(kind)
        shown = [s for s in strings if not (s.startswith("--") and "_" in s)]
        return self.parser.add_argument(*sorted(shown, key=lambda s: s.startswith("--")), **kwargs)


def _without_none(kind: Any) -> Any:
    """``X`` for ``X | None``, else ``kind``."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return kind


def add_dataclass_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, dtype: type) -> None:
    """Adds one option per field of the dataclass ``dtype``, as HfArgumentParser does, with :class:`_Conventions`.

    Unlike ``HfArgumentParser._add_dataclass_arguments`` this leaves ``dtype``'s fields unchanged (HfArgumentParser
    replaces each field's ``type`` by the resolved one, ``Optional`` stripped) and works on any parser, e.g. a
    subcommand's.

    Args:
        parser: The parser (or argument group) to add the options to.
        dtype: A dataclass whose fields carry their help as ``metadata["help"]``.
    """
    hints = typing.get_type_hints(dtype)
    for f in dataclasses.fields(dtype):
        if f.init:
            resolved = copy.copy(f)
            resolved.type = hints[f.name]
            # the per-field mapping of HfArgumentParser (a static method: it adds to the parser it is given)
            _hf_argument_parser()._parse_dataclass_field(_Conventions(parser, resolved), resolved)


def _hf_argument_parser() -> type:
    """``transformers.HfArgumentParser``, imported when needed (transformers comes with the ``adapt`` extra)."""
    from .._optional import require

    return require("transformers.hf_argparser", "adapt", "the training command line").HfArgumentParser


@functools.cache
def _parser_class() -> type:
    """:class:`transformers.HfArgumentParser` whose options follow :class:`_Conventions`."""

    class ConfigArgumentParser(_hf_argument_parser()):
        def _add_dataclass_arguments(self, dtype: type) -> None:
            add_dataclass_arguments(self, dtype)

        def parse_args_into_dataclasses(self, args: Sequence[str] | None = None) -> tuple[Any, ...]:
            """One instance per dataclass: the options given, the other fields at their defaults.

            HfArgumentParser's own expects every field in the namespace (and reads a ``.args`` file beside the
            script); here an option not given is absent. Options of no dataclass follow as a namespace, if any.
            """
            given = vars(self.parse_args(args))
            outputs = [
                dtype(**{f.name: given.pop(f.name) for f in dataclasses.fields(dtype) if f.init and f.name in given})
                for dtype in self.dataclass_types
            ]
            return (*outputs, argparse.Namespace(**given)) if given else tuple(outputs)

    return ConfigArgumentParser


def config_argument_parser(dataclass_types: Any = None, **kwargs: Any) -> argparse.ArgumentParser:
    """A :class:`transformers.HfArgumentParser` for ``dataclass_types`` with the ``hf-robustmed`` conventions.

    Args:
        dataclass_types: A dataclass or a list of them (see :func:`add_dataclass_arguments`).
        **kwargs: Passed to ``argparse.ArgumentParser``; the help formatter defaults to one that keeps the
            description's line breaks (each option's help already states its default).

    Returns:
        The parser; its ``parse_args_into_dataclasses`` gives the fields not on the command line their defaults.
    """
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    return _parser_class()(dataclass_types, **kwargs)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` plus one option per :class:`TrainConfig` field (see :func:`add_dataclass_arguments`).

    A flag not given is absent from the parsed namespace, so the YAML file's value stays; :func:`config_from_args`
    merges the two. ``output_dir`` is ``-o/--output-dir``; ``hf-robustmed`` accepts its old spellings
    (``hf_robustmed.cli.standardise_output_option``), :func:`train_argument_parser` too.

    Args:
        parser: The parser to add the options to.
    """
    parser.add_argument(
        "--config",
        help="YAML file of settings (configs/robustmedclip.yaml); flags override it "
        "(default: none, the settings below)",
    )
    add_dataclass_arguments(parser, TrainConfig)


def train_argument_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of ``python -m hf_robustmed.adaptation.train``: the options of ``hf-robustmed train``.

    The old output spellings (``--output``, ``--out``) stay accepted, hidden from the help.
    """
    parser = config_argument_parser(prog=prog, description=description)
    add_config_arguments(parser)
    parser.add_argument(*OLD_OUTPUT_SPELLINGS, dest="output_dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The config of a parsed command line: the YAML file (if any) overridden by the flags given."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    for given, other in (("shots", "fraction"), ("fraction", "shots")):  # a flag replaces the file's other mode
        if given in overrides and other not in overrides:
            overrides[other] = None
    if getattr(args, "config", None):
        return TrainConfig.from_yaml(args.config, **overrides)
    return TrainConfig.from_dict(overrides, source="command line")
