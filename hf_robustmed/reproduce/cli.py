"""The ``reproduce`` command's arguments, and running it."""

from __future__ import annotations

import argparse
from pathlib import Path

# Nothing heavy is imported here: every ``hf-robustmed`` command builds this parser (the corruption engine's
# commands must start fast and without torch). Unset options take the defaults of :class:`.study.Study`.


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _ints(value: str) -> list[int]:
    try:
        return [int(item) for item in _csv(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``hf-robustmed reproduce``."""
    parser.add_argument("-o", "--out", required=True, help="output folder (a rerun resumes it)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (downloads and sizes, disk, image-evaluations, training steps, time "
        "estimated from a quick measurement here) and fetch nothing",
    )
    parser.add_argument(
        "--source-root", help="clean sources: medmnist/{flag}_224.npz and medimeta/{id}/ (default OUT/sources)"
    )
    parser.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="use the sources as they are in --source-root (missing ones are an error)",
    )
    parser.add_argument(
        "--datasets",
        type=_csv,
        help="datasets of the study (default: the paper's 12, aml, fundus, mammo_calc, mammo_mass, "
        "pneumonia, oct, pbc, bloodmnist, breastmnist, octmnist, pneumoniamnist, retinamnist)",
    )
    parser.add_argument("--corruptions", type=_csv, help="corruptions (default: each dataset's full set)")
    parser.add_argument("--severities", type=_ints, help="severities (default 1,2,3,4,5)")
    parser.add_argument(
        "--models",
        type=_csv,
        help="zero-shot baselines, each NAME or NAME=SPEC to load it from SPEC (a local folder, a "
        "stand-in…) under its name (default clip-vit-b16,medclip-vit,biomedclip,unimedclip); "
        "'biomedclip=SPEC' also sets RobustMedCLIP's base",
    )
    parser.add_argument("--protocols", type=_csv, help="zero-shot protocols (default standard,rmc)")
    parser.add_argument(
        "--fractions",
        type=_ints,
        help="RobustMedCLIP few-shot fractions, percent of each validation split (default 10,30,75,100)",
    )
    parser.add_argument("--ranks", type=_ints, help="LoRA ranks (default 16; the authors also released 8)")
    parser.add_argument("--no-train", dest="train", action="store_false", help="do not train RobustMedCLIP")
    parser.add_argument(
        "--originals",
        choices=["auto", "none"],
        default="auto",
        help="auto: fetch and convert the authors' checkpoints of the same ranks and fractions where "
        "they can be had (razaimam45/RobustMedCLIP); none: skip them",
    )
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (paper: 20)")
    parser.add_argument("--train-batch-size", type=int, default=256, help="training batch (paper: 256)")
    parser.add_argument("--batch-size", type=int, default=256, help="evaluation images per forward pass and process")
    parser.add_argument(
        "--mixed-precision",
        choices=["no", "bf16", "fp16"],
        default="no",
        help="precision of training and evaluation (paper: fp32 = no)",
    )
    parser.add_argument("--num-workers", type=int, help="data-loader workers per process (default: the cores)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the corruptions (default 0)")
    parser.add_argument("--measure-batches", type=int, default=2, help="timed batches per architecture (dry run)")


def study_from_args(args: argparse.Namespace):
    """The :class:`~hf_robustmed.reproduce.study.Study` a parsed command line asks for."""
    from .study import PAPER_FRACTIONS, RmcRun, Study

    names, overrides = [], {}
    for item in args.models or ():
        name, sep, spec = item.partition("=")
        names.append(name)
        if sep:
            overrides[name] = spec
    given = {
        "datasets": args.datasets,
        "severities": args.severities,
        "baselines": names or None,
        "protocols": args.protocols,
    }
    return Study(
        out=Path(args.out),
        source_root=Path(args.source_root) if args.source_root else None,
        download=args.download,
        corruptions=tuple(args.corruptions) if args.corruptions else None,
        overrides=overrides,
        runs=tuple(RmcRun(r, f) for r in args.ranks or [16] for f in args.fractions or PAPER_FRACTIONS),
        train=args.train,
        originals=args.originals == "auto",
        epochs=args.epochs,
        **{key: tuple(value) for key, value in given.items() if value},
        train_batch_size=args.train_batch_size,
        batch_size=args.batch_size,
        mixed_precision=args.mixed_precision,
        num_workers=args.num_workers,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    """Runs the command: the plan (``--dry-run``), or the study."""
    from .plan import count, describe, downloads, measure
    from .run import run_study

    study = study_from_args(args)
    if args.dry_run:
        print("hf-robustmed reproduce --dry-run: the plan (nothing is fetched or written)\n", flush=True)
        print(describe(study, count(study), downloads(study), measure(study, batches=args.measure_batches)))
        return 0
    from accelerate import PartialState

    table = run_study(study)
    if PartialState().is_main_process:
        print(f"done: {table}")
    return 0
