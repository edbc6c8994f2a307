"""Publishing to the Hugging Face Hub: benchmark folders as dataset repos."""

from __future__ import annotations

import json
from pathlib import Path


def is_adapter(folder: str | Path) -> bool:
    """Whether ``folder`` is a PEFT adapter (``adapter_config.json``), i.e. a model repo."""
    return (Path(folder) / "adapter_config.json").is_file()


def push_folder(folder: str | Path, repo_id: str, *, repo_type: str | None = None, private: bool = False,
                token: str | None = None, commit_message: str | None = None) -> str:
    """Uploads a built folder (a benchmark, an adapter) to ``repo_id``, creating the repo if needed.

    A benchmark is pushed only once its build is complete (its manifest says so), an adapter once its training
    finished; the card is re-rendered with the repo id so that the usage snippets are right. Training
    checkpoints stay local. ``repo_type`` defaults to ``model`` for adapters, ``dataset`` otherwise. Returns the
    commit URL.

    Raises:
        ValueError: If the folder is missing or holds an unfinished build.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder not found: {folder}")
    manifest = folder / "benchmark.json"
    if manifest.exists():
        if not json.loads(manifest.read_text()).get("complete"):
            raise ValueError(f"{folder} holds an unfinished build; rerun the build to complete it before pushing")
        from .data.card import write_card

        write_card(folder, repo_id=repo_id)
    if is_adapter(folder):
        _refresh_adapter_card(folder, repo_id)
    repo_type = repo_type or ("model" if is_adapter(folder) else "dataset")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type=repo_type,
        commit_message=commit_message or f"Upload {folder.name} with hf-robustmed",
        ignore_patterns=["*.tmp*", ".*", "checkpoints/*"],
    )
    return str(getattr(info, "commit_url", info))


def _refresh_adapter_card(folder: Path, repo_id: str) -> None:
    """Re-renders a trained adapter's card with its repo id (keeping its results); converted ones have none."""
    from .adaptation.card import update_adapter_card

    if (folder / "training_config.yaml").exists() and not (folder / "training_summary.json").exists():
        raise ValueError(f"{folder} holds an unfinished training run; rerun it to finish before pushing")
    if (folder / "training_summary.json").exists():
        update_adapter_card(folder, repo_id=repo_id)
