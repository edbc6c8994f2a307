"""The ``hf-robustmed`` command line. Each subcommand registers itself with :func:`command`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__

_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


# One output convention (issue #12): ``-o/--output-dir`` for a folder, ``-o/--output`` for a single file. The
# spellings used before stay accepted as hidden aliases.
OUTPUT_SPELLINGS = ("-o", "--output-dir", "--output", "--out")
_OUTPUT_FILE_COMMANDS = frozenset({"gallery"})


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that hides legacy aliases and shows every option's default.

    An option's default is appended as ``(default: …)`` unless its help already says what the default is, it is
    required, it is an on/off flag, or it has no default (its help then says what leaving it out means).
    """

    def _format_action_invocation(self, action: argparse.Action) -> str:
        hidden = getattr(action, "hidden_aliases", ())
        if hidden and action.option_strings:
            shown = argparse.Action(
                [s for s in action.option_strings if s not in hidden],
                action.dest,
                nargs=action.nargs,
                metavar=action.metavar,
            )
            return super()._format_action_invocation(shown)
        return super()._format_action_invocation(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or "default" in text.lower()
            or action.required
            or action.default in (None, argparse.SUPPRESS)
            or action.nargs == 0
        ):
            return text
        return f"{text} (default: %(default)s)"


def _output_arg(
    parser: argparse.ArgumentParser,
    dest: str,
    help: str,
    *,
    file: bool = False,
    required: bool = True,
    default: str | None = None,
) -> None:
    """Adds the command's output option, ``-o/--output-dir`` (a folder) or ``-o/--output`` (a file)."""
    long = "--output" if file else "--output-dir"
    aliases = [s for s in OUTPUT_SPELLINGS[1:] if s != long]
    action = parser.add_argument(
        "-o",
        long,
        *aliases,
        dest=dest,
        required=required,
        default=default,
        help=help,
        metavar="FILE" if file else "DIR",
    )
    action.hidden_aliases = tuple(aliases)


def standardise_output_option(parser: argparse.ArgumentParser, *, file: bool = False) -> None:
    """Gives an output option that another module defined (``-o/--out``, ``--output-dir``) the standard spellings.

    Its ``dest`` is kept, so the command's code is unchanged; the old spellings stay accepted, hidden from help.
    """
    long = "--output" if file else "--output-dir"
    for action in parser._actions:
        spellings = set(action.option_strings) & set(OUTPUT_SPELLINGS)
        if getattr(action, "hidden_aliases", None) is not None or not spellings:
            continue
        aliases = [s for s in OUTPUT_SPELLINGS[1:] if s != long]
        taken = set(parser._option_string_actions) - set(action.option_strings)
        strings = ["-o", long, *aliases]
        if set(strings) & taken:
            clash = sorted(set(strings) & taken)
            raise RuntimeError(f"{parser.prog}: cannot standardise {action.option_strings}: {clash} taken")
        for string in action.option_strings:
            parser._option_string_actions.pop(string, None)
        action.option_strings = strings
        action.hidden_aliases = tuple(aliases)
        action.metavar = "FILE" if file else "DIR"
        for string in strings:
            parser._option_string_actions[string] = action


def command(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]):
    """Registers ``fn(args) -> exit code`` as subcommand ``name``; ``configure`` adds its arguments."""

    def decorator(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _COMMANDS[name] = (help, configure, fn)
        return fn

    return decorator


def _suite_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--suite",
        default=None,
        help="parameter suite: imagenet-c (default), medimeta-c or medmnist-c/<dataset>; see `hf-robustmed suites`",
    )


def _configure_corrupt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        help="image file to corrupt: any common format or DICOM, read as 8-bit grey or RGB "
        "(16-bit and float images min–max scaled; see hf_robustmed.medical_images)",
    )
    parser.add_argument("output", help="where to write the corrupted image (PNG keeps it lossless)")
    parser.add_argument("--corruption", "-c", required=True, help="corruption name (see `hf-robustmed corruptions`)")
    parser.add_argument("--severity", "-s", type=int, required=True, help="1 (mild) to 5 (severe)")
    _suite_arg(parser)
    parser.add_argument("--seed", type=int, default=0, help="base seed of the random draws")
    parser.add_argument("--key", default="0", help="sample key; with the seed it fixes the draws")


@command("corrupt", "corrupt one image file", _configure_corrupt)
def _corrupt(args: argparse.Namespace) -> int:
    from .corruptions import corrupt
    from .files import read_image, write_image

    key = int(args.key) if args.key.isdigit() else args.key
    image = read_image(args.input)
    out = corrupt(image, args.corruption, args.severity, suite=args.suite, seed=args.seed, key=key)
    print(f"wrote {write_image(out, args.output)}")
    return 0


def _configure_corruptions(parser: argparse.ArgumentParser) -> None:
    _suite_arg(parser)


@command("corruptions", "table of a suite's corruptions and their five severity parameters", _configure_corruptions)
def _corruptions(args: argparse.Namespace) -> int:
    from .corruptions import describe_corruptions, format_param, get_suite

    suite = get_suite(args.suite)
    rows = [
        [row.name, row.category, "yes" if row.random else "no", *map(format_param, row.params), row.param_doc]
        for row in describe_corruptions(args.suite)
    ]
    header = ["corruption", "category", "random", "sev 1", "sev 2", "sev 3", "sev 4", "sev 5", "parameter"]
    print(f"{suite.name}: {suite.description}\n")
    print(_markdown_table(header, rows))
    return 0


@command("suites", "list the parameter suites", lambda parser: None)
def _suites(args: argparse.Namespace) -> int:
    from .corruptions import SUITES

    rows = [[s.name, str(len(s.corruptions)), s.description] for s in SUITES.values()]
    print(_markdown_table(["suite", "corruptions", "description"], rows))
    return 0


def _configure_gallery(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "image",
        nargs="?",
        help="clean image file, read as `corrupt` reads it, DICOM included (default: a built-in sample, see --sample)",
    )
    _output_arg(parser, "output", "PNG file to write", file=True)
    _suite_arg(parser)
    parser.add_argument("--corruptions", help="comma-separated subset of rows (default: all of the suite's)")
    parser.add_argument(
        "--sample", choices=["phantom", "cells"], default="phantom", help="built-in image when no IMAGE"
    )
    parser.add_argument("--size", type=int, default=224, help="side of the built-in sample in pixels")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the random corruptions' draws")
    parser.add_argument("--tile", type=int, default=160, help="cell size in the figure, in pixels")


@command("gallery", "figure of every corruption at every severity (the paper's Figure 1)", _configure_gallery)
def _gallery(args: argparse.Namespace) -> int:
    from .figures import corruption_gallery
    from .files import read_image, write_image
    from .samples import shepp_logan, stained_cells

    if args.image:
        image = read_image(args.image)
    else:
        image = shepp_logan(args.size) if args.sample == "phantom" else stained_cells(args.size)
    names = [n.strip() for n in args.corruptions.split(",")] if args.corruptions else None
    figure = corruption_gallery(
        image, suite=args.suite, corruptions=names, seed=args.seed, tile=args.tile, title=args.suite or "imagenet-c"
    )
    print(f"wrote {write_image(figure, args.output)}")
    return 0


def _configure_build(parser: argparse.ArgumentParser) -> None:
    from .data.benchmarks import BENCHMARKS
    from .data.builder import GREY_MODES

    parser.add_argument(
        "benchmark",
        choices=list(BENCHMARKS),
        help="what to build: " + "; ".join(f"{key}: {definition.help}" for key, definition in BENCHMARKS.items()),
    )
    _output_arg(parser, "out", "output folder (Hub dataset-repo layout); a rerun resumes")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete a different build found in --output-dir (other sources or settings) instead of refusing",
    )
    parser.add_argument(
        "--source-root",
        required=True,
        help="folder of the sources: MedMNIST npz files, MedIMeta dataset folders, a published "
        "release, or (image-dataset) a dataset path / Hub id / image folder",
    )
    parser.add_argument(
        "--clean-root",
        help="releases: folder of the clean sources (MedMNIST npz / MedIMeta folders); "
        "required there, not used otherwise (default: none)",
    )
    parser.add_argument("--datasets", help="comma-separated subset (default: all of the benchmark's)")
    parser.add_argument("--corruptions", help="comma-separated subset (default: each dataset's set)")
    parser.add_argument("--severities", default="1,2,3,4,5", help="comma-separated severities")
    parser.add_argument(
        "--splits", help="comma-separated splits (default: test for MedMNIST-C, test,validation for MediMeta-C)"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=224,
        help="MedMNIST image size: 28, 64, 128 or 224 (the {flag}_{size}.npz files read; 28 px is {flag}.npz)",
    )
    parser.add_argument("--suite", default="imagenet-c", help="image-dataset: the parameter suite")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the random corruptions' draws")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: in this process)")
    parser.add_argument("--shard-rows", type=int, default=1000, help="images per Parquet shard")
    parser.add_argument(
        "--grey",
        choices=GREY_MODES,
        help="store grey images as one channel or RGB "
        "(default: the benchmark's own; native for MedMNIST-C, rgb for MediMeta-C)",
    )
    parser.add_argument("--download", action="store_true", help="download missing sources (Zenodo, checksummed)")
    parser.add_argument("--name", help="benchmark name for the card (default: the benchmark's)")
    parser.add_argument(
        "--push-to-hub",
        metavar="ORG/NAME",
        help="once built, upload the folder to this Hub dataset repo, as `hf-robustmed push` does "
        "(default: build only)",
    )


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _severities(value: str | None) -> tuple[int, ...]:
    """``"1,3"`` → ``(1, 3)``; all five when not given."""
    return tuple(int(s) for s in _csv(value) or ()) or (1, 2, 3, 4, 5)


@command(
    "build",
    "build a corruption benchmark as a Hub dataset folder (Parquet, one config per corruption/severity)",
    _configure_build,
)
def _build(args: argparse.Namespace) -> int:
    from .data import build_benchmark
    from .data.benchmarks import benchmark_jobs

    jobs, name, grey = benchmark_jobs(
        args.benchmark,
        args.source_root,
        datasets=_csv(args.datasets),
        corruptions=_csv(args.corruptions),
        severities=_severities(args.severities),
        splits=_csv(args.splits),
        size=args.size,
        clean_root=args.clean_root,
        suite=args.suite,
        download=args.download,
        name=args.name,
        grey=args.grey,
    ).astuple()
    if not jobs:
        raise ValueError("nothing to build: no dataset has the requested corruptions")
    report = build_benchmark(
        jobs,
        args.out,
        name=name,
        seed=args.seed,
        grey=grey,
        num_workers=args.workers,
        shard_rows=args.shard_rows,
        overwrite=args.overwrite,
    )
    print(
        f"{name}: {len(report.configs)} configs in {report.out_dir} "
        f"({report.shards_written} shards written, {report.shards_skipped} already there)"
    )
    if args.push_to_hub:
        from .hub import push_folder

        print(push_folder(report.out_dir, args.push_to_hub))
    return 0


def _configure_push(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a built benchmark (or adapter) folder")
    parser.add_argument("repo_id", help="ORG/NAME on the Hub")
    parser.add_argument(
        "--repo-type",
        default=None,
        choices=["dataset", "model"],
        help="default: model for an adapter folder, dataset otherwise",
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="create the Hub repo as private (default: public; an existing repo keeps its visibility)",
    )


@command("push", "upload a built benchmark (or adapter) folder to the Hugging Face Hub", _configure_push)
def _push(args: argparse.Namespace) -> int:
    from .hub import push_folder

    print(push_folder(args.folder, args.repo_id, repo_type=args.repo_type, private=args.private))
    return 0


def _configure_describe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a benchmark folder built by `hf-robustmed build`")
    _output_arg(parser, "output", "folder for the PNG figures")
    parser.add_argument("--severity", type=int, default=3, help="severity compared in the spectra and densities")
    parser.add_argument("--limit", type=int, default=64, help="images per config to read")
    parser.add_argument("--split", default="test", help="the split whose images are described")


@command("describe", "figures of a built benchmark: gallery, DCT spectra, intensity densities", _configure_describe)
def _describe(args: argparse.Namespace) -> int:
    from .data.describe import sample_benchmark
    from .figures import SEVERITY_COLUMNS, dct_spectrum_figure, image_grid, intensity_density_figure, save_figure
    from .files import write_image

    out, severity = Path(args.output), args.severity
    for sample in sample_benchmark(args.folder, limit=args.limit, split=args.split):
        gallery = image_grid(sample.gallery_rows(), SEVERITY_COLUMNS, tile=128, title=sample.title)
        print(f"wrote {write_image(gallery, out / f'{sample.dataset}_gallery.png')}")
        chosen = sample.at_severity(severity)
        if not chosen:
            continue
        for figure, what, file in (
            (dct_spectrum_figure, "average DCT spectrum", "dct_spectrum"),
            (intensity_density_figure, "pixel intensities", "intensity_density"),
        ):
            drawn = figure(sample.clean, chosen, title=f"{sample.title}: {what} (severity {severity})")
            print(f"wrote {save_figure(drawn, out / f'{sample.dataset}_{file}.png')}")
    return 0


def _configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results", help="long-format results, .parquet or .csv (model, dataset, corruption, severity, metric, value, n)"
    )
    _output_arg(parser, "output", "folder for report.md, leaderboard.csv and the figures")
    parser.add_argument("--reference", default="clip-vit-b16", help="model the errors are normalised by: it scores 100")
    parser.add_argument(
        "--seen-from",
        action="append",
        default=[],
        metavar="MODEL=ADAPTER",
        help="an adapter trained with corruption augmentation (repeatable): its model's mCE is also "
        "given on the corruptions seen in training and on those held out (seen_held_out.csv)",
    )


@command(
    "report",
    "Markdown report, leaderboard and figures of evaluation results (mCE, accuracy per severity)",
    _configure_report,
)
def _report(args: argparse.Namespace) -> int:
    from .report import REPORT_FILES, write_report

    report = write_report(args.results, args.output, reference=args.reference)
    for name in REPORT_FILES:
        print(f"wrote {report.parent / name}")
    if args.seen_from:
        _seen_held_out(args.results, report.parent, args.seen_from, args.reference)
    return 0


def _seen_held_out(results: str, out: Path, pairs: Sequence[str], reference: str) -> None:
    """mCE on seen and held-out corruptions of the models trained with corruption augmentation."""
    from .adaptation.card import seen_corruptions
    from .files import atomic_path
    from .metrics import seen_held_out_mce
    from .report import load_results

    seen = {}
    for pair in pairs:
        model, sep, adapter = pair.partition("=")
        if not sep or not model or not adapter:
            raise ValueError(f"--seen-from takes MODEL=ADAPTER_FOLDER, got {pair!r}")
        seen[model] = seen_corruptions(adapter)
    frame = load_results(results)
    unknown = sorted(set(seen) - set(frame.model.astype(str)))
    if unknown:
        raise ValueError(f"--seen-from names models that are not in the results: {', '.join(unknown)}")
    table = seen_held_out_mce(frame, seen, reference).loc[list(seen)]
    with atomic_path(out / "seen_held_out.csv") as tmp:
        table.to_csv(tmp)
    print(f"wrote {out / 'seen_held_out.csv'}")
    for model, row in table.iterrows():
        print(
            f"  {model}: mCE {row.mce_seen:.1f} on the {row.pairs_seen} seen pairs, {row.mce_held_out:.1f} on the "
            f"{row.pairs_held_out} held-out pairs (seen: {row.seen or 'none'})"
        )


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from .data.benchmarks import clean_sources

    parser.add_argument(
        "--models", required=True, help="comma-separated registry names or specs (hf-hub:…, local-dir:…)"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--benchmark", help="benchmark folder or Hub dataset repo id")
    where.add_argument(
        "--source",
        choices=clean_sources(),
        help="evaluate clean sources (--source-root) with every corruption made on the fly, nothing "
        "built or stored: MedMNIST npz files, MedIMeta folders, or a Hugging Face image dataset / "
        "image folder (with --suite)",
    )
    _output_arg(parser, "out", "results folder (a rerun resumes)")
    parser.add_argument(
        "--source-root",
        help="with --source: the folder of the sources (or the dataset's Hub id); required there (default: none)",
    )
    parser.add_argument(
        "--size", type=int, default=224, help="with --source medmnist-c: the MedMNIST image size (default: %(default)s)"
    )
    parser.add_argument(
        "--suite",
        default="imagenet-c",
        help="with --source image-dataset: the corruption parameter suite (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="with --source: base seed of the corruptions' draws, as `build --seed` (default: %(default)s)",
    )
    parser.add_argument("--download", action="store_true", help="with --source: download missing sources (checksummed)")
    parser.add_argument("--datasets", help="comma-separated subset (default: all of the benchmark's)")
    parser.add_argument("--corruptions", help="comma-separated subset (default: all of each dataset's)")
    parser.add_argument("--severities", help="comma-separated subset of 1..5 (default: all five)")
    parser.add_argument("--split", default="test", help="the split evaluated")
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass and process")
    parser.add_argument(
        "--mixed-precision",
        default="no",
        choices=["no", "fp16", "bf16"],
        help="precision of the forward passes (through accelerate; no = fp32)",
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="data-loader workers per process that read, decode (and corrupt) images "
        "(default: the CPU cores available per process; 0: in the main process)",
    )
    parser.add_argument(
        "--on-the-fly",
        action="store_true",
        help="corrupt the clean configs in the loader workers instead of reading stored corrupted "
        "configs (byte-identical images; from the Hub only the -clean configs are downloaded)",
    )
    parser.add_argument(
        "--protocol",
        default="standard",
        choices=["standard", "rmc"],
        help="zero-shot protocol: standard (default), or rmc = the original RobustMedCLIP "
        "code's, with its defects D2/D3/D4/D6 (outputs are marked)",
    )


@command(
    "evaluate",
    "zero-shot evaluation of models on a benchmark (also: accelerate launch -m hf_robustmed.evaluation)",
    add_evaluate_arguments,
)
def _evaluate(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from .evaluation import SourceBenchmark, evaluate

    benchmark = args.benchmark
    if args.source:
        if not args.source_root:
            raise ValueError("--source needs --source-root (the folder of the clean sources)")
        from .data.benchmarks import benchmark_jobs

        jobs, name, grey = benchmark_jobs(
            args.source,
            args.source_root,
            datasets=_csv(args.datasets),
            corruptions=_csv(args.corruptions),
            severities=_severities(args.severities),
            splits=[args.split],
            size=args.size,
            suite=args.suite,
            download=args.download,
        ).astuple()
        benchmark = SourceBenchmark(jobs, name=name, seed=args.seed, grey=grey)
    severities = [int(s) for s in _csv(args.severities)] if args.severities else None
    results = evaluate(
        _csv(args.models),
        benchmark,
        args.out,
        datasets=_csv(args.datasets),
        corruptions=_csv(args.corruptions),
        severities=severities,
        split=args.split,
        batch_size=args.batch_size,
        mixed_precision=args.mixed_precision,
        protocol=args.protocol,
        num_workers=args.num_workers,
        on_the_fly=args.on_the_fly,
    )
    if PartialState().is_main_process:
        _print_evaluation_summary(Path(args.out), results)
    return 0


def _print_evaluation_summary(out: Path, results) -> None:
    """The short summary that ``hf-robustmed evaluate`` and ``accelerate launch -m hf_robustmed.evaluation`` print."""
    accuracy = results[results.metric == "accuracy"]
    print(f"wrote {out / 'results.parquet'} ({len(results)} rows) and {out / 'summary.json'}")
    for model, group in accuracy.groupby("model", sort=False):
        clean = group[group.corruption == "clean"].value.mean()
        corrupted = group[group.corruption != "clean"].value.mean()
        weights = group.weights.iloc[0] if "weights" in group else "unknown"
        note = " [STAND-IN weights: numbers mean nothing]" if weights == "stand-in" else ""
        print(f"  {model}: clean accuracy {clean:.3f}, corrupted {corrupted:.3f}{note}")


def _configure_train(parser: argparse.ArgumentParser) -> None:
    """The options of :class:`~hf_robustmed.adaptation.config.TrainConfig`, through transformers' HfArgumentParser.

    Without transformers (an install without the ``adapt`` extra) the command stays listed and says what it needs.
    """
    from .adaptation.config import add_config_arguments

    try:
        add_config_arguments(parser)
    except ImportError as error:
        parser.description = f"{parser.description}. {error}"
        parser.set_defaults(missing_extra=str(error))


@command(
    "train",
    "train a RobustMedCLIP LoRA adapter (also: accelerate launch -m hf_robustmed.adaptation.train)",
    _configure_train,
)
def _train(args: argparse.Namespace) -> int:
    if getattr(args, "missing_extra", None):
        raise ImportError(args.missing_extra)
    from .adaptation.config import config_from_args
    from .adaptation.train import train

    print(f"adapter: {train(config_from_args(args))}")
    return 0


def _configure_convert(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", help="the original RobustMedCLIP model.pth (exp-rank-R/vit/fewshot_F_percent/...)"
    )
    parser.add_argument("legacy_out", nargs="?", help=argparse.SUPPRESS)  # the old positional OUT
    _output_arg(
        parser,
        "out",
        "adapter folder to write (required; the old positional OUT is accepted too, default: none)",
        required=False,
    )
    parser.add_argument("--base-model", default="biomedclip", help="the BiomedCLIP base (name or open_clip spec)")


@command("convert-rmc", "convert an original RobustMedCLIP checkpoint into a PEFT LoRA adapter", _configure_convert)
def _convert(args: argparse.Namespace) -> int:
    from .adaptation.convert import convert_rmc_checkpoint

    if args.out and args.legacy_out:
        raise ValueError("give the adapter folder once: -o/--output-dir OUT")
    out = args.out or args.legacy_out
    if not out:
        raise ValueError("convert-rmc needs the adapter folder to write: -o/--output-dir OUT")
    print(f"adapter: {convert_rmc_checkpoint(args.checkpoint, out, base_model=args.base_model)}")
    return 0


def _configure_adapter_card(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("adapter", help="a trained adapter folder")
    parser.add_argument(
        "--results",
        help="evaluation results (results.parquet or .csv) to put in the card "
        "(default: the results put in it before, if any)",
    )
    parser.add_argument("--model", help="the adapter's model name in the results (default: peft:ADAPTER)")
    parser.add_argument(
        "--benchmark",
        help="Hub id of the evaluated benchmark, for the model-index (default: the one given before, if any)",
    )
    parser.add_argument(
        "--repo-id",
        help="the adapter's Hub repo id, for the usage snippets (default: the local "
        "folder's path, so the snippets run here; `hf-robustmed push` renders them with the repo id)",
    )


@command(
    "adapter-card", "re-render an adapter's model card, with robustness results as model-index", _configure_adapter_card
)
def _adapter_card(args: argparse.Namespace) -> int:
    from .adaptation.card import update_adapter_card

    model = args.model or f"peft:{args.adapter}"
    repo_id = args.repo_id or Path(args.adapter).as_posix()  # never a made-up "<org>/<folder name>"
    card = update_adapter_card(
        args.adapter, repo_id=repo_id, results=args.results, results_model=model, benchmark=args.benchmark
    )
    print(f"wrote {card}")
    return 0


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    _output_arg(parser, "out", "output folder", required=False, default="demo_out")
    parser.add_argument(
        "--models",
        default="auto",
        choices=["auto", "real", "standins"],
        help="auto: the real CLIP and BiomedCLIP if their weights are in the local Hugging Face cache, "
        "else tiny stand-ins; real: download them; standins: always the stand-ins",
    )


@command(
    "demo",
    "the whole pipeline on embedded data: benchmark, zero-shot evaluation, mCE, adapter, report",
    _configure_demo,
)
def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, models=args.models)
    return 0


def _configure_reproduce(parser: argparse.ArgumentParser) -> None:
    from .reproduce.cli import add_arguments

    add_arguments(parser)


@command(
    "reproduce",
    "the paper's whole study in one resumable command: sources, RobustMedCLIP training, zero-shot "
    "evaluation under both protocols, the paper's table beside ours (--dry-run: the plan)",
    _configure_reproduce,
)
def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce.cli import run

    return run(args)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``hf-robustmed`` parser with every command.

    Args:
        only: Configure the options of this command alone (the others are listed with their help but take no
            options): a command line names one command, and some commands' options import heavy libraries
            (``train``'s come from transformers' HfArgumentParser).
    """
    parser = argparse.ArgumentParser(prog="hf-robustmed", description="Robustness of medical vision-language models.")
    parser.add_argument("--version", action="version", version=f"hf-robustmed {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, configure, fn) in _COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        if only is None or name == only:
            configure(sub)
            standardise_output_option(sub, file=name in _OUTPUT_FILE_COMMANDS)
        sub.set_defaults(run=fn)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command an ``hf-robustmed`` command line names (its first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_script(benchmark: str, argv: Sequence[str]) -> int:
    """``hf-robustmed build BENCHMARK …`` (with ``--push-to-hub ORG/NAME``, then pushed to the Hub).

    The entry point of ``dataset_scripts/build_*.py``.
    """
    return main(["build", benchmark, *argv])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hf-robustmed``; returns the exit code.

    An error the user can fix (bad input, a missing, unreadable or corrupt file, a full or read-only disk, no
    network or offline mode, a missing extra; see :func:`hf_robustmed.errors.user_message`) prints
    ``hf-robustmed: error: <one line>`` and returns 2; anything else is a bug and keeps its traceback, as every
    error does with ``HF_ROBUSTMED_DEBUG=1``.
    """
    from .errors import debug_requested, user_message

    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    args = build_parser(only=command if command in _COMMANDS else None).parse_args(argv)
    try:
        return args.run(args)
    except Exception as error:
        message = user_message(error)
        if message is None or debug_requested():
            raise
        print(f"hf-robustmed: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
