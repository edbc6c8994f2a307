"""A tiny MedCLIP stand-in in the release's layout (``pytorch_model.bin`` with transformers 4.x Swin key names)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from ..models.medclip import SWIN_RENAMES, MedCLIPModel, build_model, rename_swin, write_config
from ..models.provenance import STANDIN_KEY, standin_marker

__all__ = ["release_state_dict", "save_tiny_medclip"]


def release_state_dict(model: MedCLIPModel) -> dict[str, torch.Tensor]:
    """``model``'s state dict in the release's key layout (transformers 4.x Swin names and index buffers)."""
    inverse = tuple((new, old) for old, new in SWIN_RENAMES)
    state = {rename_swin(k, inverse): v.clone() for k, v in model.state_dict().items()}
    bert = model.text_model.model
    state["text_model.model.embeddings.position_ids"] = torch.arange(bert.config.max_position_embeddings)[None]
    for name, buffer in model.named_buffers():
        if name.endswith("relative_position_bias.relative_position_index"):
            area = math.isqrt(buffer.numel())
            legacy = name.replace("attention.relative_position_bias.", "attention.self.")
            state[legacy] = buffer.reshape(area, area).clone()
    return state


def _tiny_config(vision: str, vocab_size: int, image_size: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "vision": vision,
        "bert_config": {
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "num_hidden_layers": 3,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 128,
        },
        "proj_dim": 16,
        "image_size": image_size,
        "tokenizer": "tokenizer",
    }
    if vision == "vit":
        config["swin_config"] = {
            "image_size": image_size,
            "patch_size": 4,
            "embed_dim": 8,
            "depths": [1, 1],
            "num_heads": [1, 2],
            "window_size": 2,
        }
    else:
        config["resnet_layers"] = [1, 1, 1, 1]
    return config


def _save_tokenizer(folder: Path) -> int:
    """A WordPiece tokenizer in ``folder/tokenizer``; returns its vocabulary size."""
    from transformers import BertTokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = list(
        dict.fromkeys(
            [
                "[PAD]",
                "[UNK]",
                "[CLS]",
                "[SEP]",
                "[MASK]",
                *letters,
                *(f"##{c}" for c in letters),
                ",",
                ".",
                "of",
                "a",
                "the",
            ]
        )
    )
    (folder / "tokenizer").mkdir(exist_ok=True)
    (folder / "tokenizer" / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "tokenizer" / "vocab.txt"), model_max_length=512).save_pretrained(folder / "tokenizer")
    return len(vocab)


def save_tiny_medclip(
    folder: str | os.PathLike,
    vision: str = "vit",
    *,
    seed: int = 0,
    image_size: int = 32,
    logit_scale: float | None = None,
) -> Path:
    """A tiny random MedCLIP in the release layout (``pytorch_model.bin`` + WordPiece tokenizer + config).

    Swin: 2 stages, 8 channels; ResNet: one Bottleneck per stage (ResNet-50 key names); BERT: 3 layers of 32.

    Args:
        folder: Where to write it (loadable as ``medclip:FOLDER``).
        vision: ``"vit"`` (Swin) or ``"resnet"``.
        seed: Seed of the random weights.
        image_size: Input side in pixels.
        logit_scale: Overrides the saved (unclamped) log scale.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = _tiny_config(vision, _save_tokenizer(folder), image_size)
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():
        for parameter in model.parameters():  # visible, non-degenerate random weights
            parameter.add_(0.02 * torch.randn_like(parameter))
        if logit_scale is not None:
            model.logit_scale.fill_(logit_scale)
    torch.save(release_state_dict(model), folder / "pytorch_model.bin")
    write_config(folder, {**config, STANDIN_KEY: standin_marker()})
    return folder
