"""A tiny UniMed-CLIP stand-in in the authors' open_clip-fork training-checkpoint layout."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..models.provenance import STANDIN_KEY, standin_marker
from ..models.unimedclip import (
    HUB_FILE,
    HUB_REPO,
    NUMPY_SCALAR,
    TEXT_MODEL,
    UniMedArchitecture,
    build_model,
    to_fork_key,
)
from .standins import save_tiny_bert, seed_hub_cache

__all__ = ["fork_state_dict", "save_fork_checkpoint", "save_tiny_unimedclip", "seed_tiny_unimedclip"]


def fork_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A mainline ``CustomTextCLIP``'s weights under the fork's key names."""
    return {to_fork_key(key): value.detach().clone() for key, value in model.state_dict().items()}


class NumPy1Pickler(pickle._Pickler):
    """Pickles NumPy scalars under NumPy 1.x's global name, as the released checkpoints do."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_global(self, obj, name=None):
        if obj is NUMPY_SCALAR:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\nscalar\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


class NumPy1PickleModule:
    """The ``pickle_module`` for ``torch.save`` that writes with :class:`NumPy1Pickler`."""

    Pickler = NumPy1Pickler
    __name__ = "pickle"


def save_fork_checkpoint(model: torch.nn.Module, path: str | os.PathLike, *, epoch: int = 1) -> Path:
    """Saves ``model`` as an open_clip training checkpoint in the fork's layout.

    ``{"epoch", "name", "state_dict" (``module.``-prefixed fork keys, as DDP saves them), "optimizer"}``; the
    optimizer's learning rate is a NumPy float (as open_clip's cosine schedule leaves it), pickled under NumPy
    1.x's global name.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.logit_scale.sum().backward()  # one step: the optimizer state then holds Adam moments
    optimizer.step()
    optimizer.zero_grad()
    for group in optimizer.param_groups:
        group["lr"] = np.float64(0.5 * (1 + np.cos(np.pi * 0.25)) * 1e-5)
    state = {f"module.{key}": value for key, value in fork_state_dict(model).items()}
    checkpoint = {
        "epoch": epoch,
        "name": "unimed-clip-stand-in",
        "state_dict": state,
        "optimizer": optimizer.state_dict(),
        STANDIN_KEY: standin_marker(),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path, pickle_module=NumPy1PickleModule)
    return path


def save_tiny_unimedclip(
    path: str | os.PathLike, text_folder: str | os.PathLike, *, seed: int = 0, image_size: int = 224, layers: int = 2
) -> Path:
    """A tiny random UniMed-CLIP in the fork's checkpoint layout.

    ViT: width 64 (one head), patch 32 (7×7 patches at 224 px), ``layers`` blocks, embedding 16; text tower: the
    tiny BERT whose config is in ``text_folder`` (see :func:`~hf_robustmed.testing.standins.save_tiny_bert`).
    """
    torch.manual_seed(seed)
    architecture = UniMedArchitecture(embed_dim=16, image_size=image_size, patch_size=32, width=64, layers=layers)
    model = build_model(architecture, str(text_folder))
    with torch.no_grad():
        for parameter in model.parameters():  # visible, non-degenerate weights (LayerNorms off 1/0, biases off 0)
            parameter.add_(0.05 * torch.randn_like(parameter))
    return save_fork_checkpoint(model, path)


def seed_tiny_unimedclip(
    cache_dir: str | os.PathLike, work_dir: str | os.PathLike, *, seed: int = 0, image_size: int = 224
) -> str:
    """Seeds a Hugging Face cache so that ``create_model("unimedclip")`` loads a tiny stand-in offline.

    Two repos, as the real model: the BiomedBERT repo (config and tokenizer, read by ``HFTextEncoder`` and
    ``HFTokenizer``) and the RobustMedCLIP mirror holding the checkpoint at ``HUB_FILE``.

    Returns:
        The path of the seeded checkpoint.
    """
    work_dir = Path(work_dir)
    text_folder = save_tiny_bert(work_dir / "biomedbert")
    seed_hub_cache(TEXT_MODEL, text_folder, cache_dir)
    checkpoint = save_tiny_unimedclip(
        work_dir / "unimedclip" / Path(HUB_FILE).name, text_folder, seed=seed, image_size=image_size
    )
    (work_dir / "unimedclip-repo").mkdir(parents=True, exist_ok=True)
    (work_dir / "unimedclip-repo" / "README.md").write_text("tiny UniMed-CLIP stand-in\n")
    snapshot = seed_hub_cache(HUB_REPO, work_dir / "unimedclip-repo", cache_dir)
    (snapshot / HUB_FILE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, snapshot / HUB_FILE)
    return str(snapshot / HUB_FILE)
