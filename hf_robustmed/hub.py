"""Publishing to the Hugging Face Hub: benchmark folders as dataset repos."""

from __future__ import annotations

import json
from pathlib import Path


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
    if (folder / "benchmark.json").exists():
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
    from .data.builder import MANIFEST, STAGING

    manifest = folder / MANIFEST
    unfinished = (folder / STAGING).is_dir() or (
        manifest.exists() and not json.loads(manifest.read_text()).get("complete")
    )
    if unfinished:
        raise ValueError(f"{folder} holds an unfinished build; rerun the build to complete it before pushing")
    if (
        is_adapter(folder)
        and (folder / "training_config.yaml").exists()
        and not (folder / "training_summary.json").exists()
    ):
        raise ValueError(f"{folder} holds an unfinished training run; rerun it to finish before pushing")
