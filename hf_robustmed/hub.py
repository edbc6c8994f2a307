"""The Hugging Face Hub: benchmark folders as dataset repos, resolved for reading and pushed when built."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .data.manifest import CARD, MANIFEST, BenchmarkManifest, build_state, manifest_path


def resolve_benchmark(benchmark: str, configs: Sequence[str] | None = None) -> Path:
    """A local benchmark folder, or a Hub dataset repo downloaded into the cache: its card and manifest, and the
    files of ``configs`` only (``None``: every config; ``[]``: none).

    Raises:
        ValueError: For a path that is not a benchmark folder, or a repo that cannot be had (one line, no
            traceback chain).
    """
    path = Path(benchmark).expanduser()
    if path.is_dir():
        manifest_path(path)  # names what is missing: a manifest, or the rest of an interrupted build
        return path
    if _looks_local(benchmark):
        raise ValueError(f"no benchmark folder {benchmark!r} (and it is not a Hub repo id ORG/NAME)")
    return _download(benchmark, configs)


def _looks_local(benchmark: str) -> bool:
    """A path rather than a Hub ``ORG/NAME``: explicit, with more than two parts, or under an existing folder."""
    parts = Path(benchmark).parts
    return (
        benchmark.startswith((".", "/", "~")) or len(parts) != 2 or Path(parts[0]).is_dir() or Path(benchmark).exists()
    )


def _download(repo_id: str, configs: Sequence[str] | None) -> Path:
    """The card, manifest and ``configs``' files of a Hub benchmark, in the Hub cache."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    patterns = [CARD, MANIFEST] + [f"{c}/*" for c in (["*"] if configs is None else configs)]
    try:
        folder = Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=patterns))
    except (HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot get the benchmark {repo_id!r} from the Hub: {reason}") from None
    if not (folder / MANIFEST).is_file():
        raise ValueError(f"the Hub repo {repo_id!r} is not a benchmark (it has no {MANIFEST})")
    return folder


def is_adapter(folder: str | Path) -> bool:
    """Whether ``folder`` is a PEFT adapter (``adapter_config.json``), i.e. a model repo."""
    return (Path(folder) / "adapter_config.json").is_file()


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Uploads a built folder (a benchmark, an adapter) to ``repo_id``, creating the repo if needed.

    A benchmark is pushed only once its build is complete (its manifest says so), an adapter once its training
    finished; the card is re-rendered with the repo id so that the usage snippets are right. Training
    checkpoints stay local. ``repo_type`` defaults to ``model`` for adapters, ``dataset`` otherwise. Returns the
    commit URL.

    Nothing is changed, locally or on the Hub, before the folder is known to be complete and the Hub answers: the
    checks come first, then the repo is created, then the cards are re-rendered and the folder uploaded.

    Raises:
        ValueError: If the folder is missing or holds an unfinished build.
        huggingface_hub.errors.OfflineModeIsEnabled: With ``HF_HUB_OFFLINE=1`` (nothing is changed).
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    _check_pushable(folder)
    repo_type = repo_type or ("model" if is_adapter(folder) else "dataset")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if (folder / MANIFEST).exists():
        from .data.card import write_card

        write_card(folder, repo_id=repo_id)
    if is_adapter(folder) and (folder / "training_summary.json").exists():
        from .adaptation.card import update_adapter_card

        update_adapter_card(folder, repo_id=repo_id)  # with its repo id; converted adapters have no summary
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type=repo_type,
        commit_message=commit_message or f"Upload {folder.name} with hf-robustmed",
        ignore_patterns=["*.tmp*", ".*", "checkpoints/*"],
    )
    return str(getattr(info, "commit_url", info))


def _check_pushable(folder: Path) -> None:
    """Refuses a missing folder, an unfinished build and an unfinished training run (before anything is done)."""
    if not folder.is_dir():
        raise ValueError(f"folder not found: {folder}")
    state = build_state(folder)
    if state == "unfinished":
        raise ValueError(f"{folder} holds an unfinished build; rerun the build to complete it before pushing")
    if state == "complete":
        BenchmarkManifest.read(folder)  # a damaged manifest is refused before the Hub repo is created
    if (
        is_adapter(folder)
        and (folder / "training_config.yaml").exists()
        and not (folder / "training_summary.json").exists()
    ):
        raise ValueError(f"{folder} holds an unfinished training run; rerun it to finish before pushing")
