"""Tiny randomly initialised stand-ins saved in each family's real layout, for offline tests and demos.

They go through the unchanged loading code: a folder for ``local-dir:`` / ``transformers:PATH``, or the same
folder placed in a Hugging Face cache so that ``hf-hub:ORG/REPO`` resolves offline (``HF_HUB_OFFLINE=1``).

Every stand-in carries a marker, the key :data:`STANDIN_KEY` in the config it writes (``open_clip_config.json``,
``config.json``, ``medclip_config.json``, the top level of a UniMed-CLIP checkpoint, the card data of an adapter
trained on a stand-in base). The loaders read it with :func:`loaded_provenance`: the model's ``provenance`` then
says ``"stand-in"`` and a warning naming the model is logged, so a stand-in seeded under a real repo id (the demo's
``demo_out/hub``) can never pass for the real model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

STANDIN_KEY = "hf_robustmed_stand_in"
STANDIN = "stand-in"
PRETRAINED = "pretrained"


def standin_marker() -> dict[str, str]:
    """The value of :data:`STANDIN_KEY` written into every stand-in's config."""
    return {"weights": STANDIN, "written_by": "hf_robustmed.models.standins",
            "note": "tiny randomly initialised stand-in in a real model's layout; its outputs mean nothing"}


def is_standin(marker: Any) -> bool:
    """Whether ``marker`` (the value found under :data:`STANDIN_KEY`, or ``None``) marks a stand-in."""
    return isinstance(marker, Mapping) and marker.get("weights") == STANDIN


def json_marker(path: str | os.PathLike) -> Any:
    """The :data:`STANDIN_KEY` value of a JSON config file (``None`` when absent or unreadable as JSON)."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return config.get(STANDIN_KEY) if isinstance(config, dict) else None


def loaded_provenance(name: str, marker: Any, detail: str) -> dict[str, str]:
    """A loaded model's ``provenance``; logs a warning naming the model when ``marker`` marks a stand-in.

    Args:
        name: The model's name (registry name or spec).
        marker: What the model's files hold under :data:`STANDIN_KEY` (``None``: nothing).
        detail: Where the weights were read from (file, folder or repo).
    """
    if is_standin(marker):
        logger.warning("model %r: loaded STAND-IN weights from %s (a tiny randomly initialised model written by "
                       "hf_robustmed.models.standins), not the real model; its outputs mean nothing", name, detail)
        return {"weights": STANDIN, "detail": detail}
    return {"weights": PRETRAINED, "detail": detail}


OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def save_tiny_open_clip(folder: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny open_clip CLIP (1-layer ViT and text transformer, CLIP BPE tokenizer) in open_clip's Hub layout."""
    import open_clip
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = {
        "embed_dim": 16,
        "quick_gelu": True,
        "vision_cfg": {"image_size": image_size, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)},
              STANDIN_KEY: standin_marker()}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1))
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**model_cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder


def save_tiny_transformers_clip(folder: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny transformers ``CLIPModel`` with a working ``CLIPProcessor`` (byte-level BPE over a small vocab)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in letters + [f"{c}</w>" for c in letters] + ["<unk>"]:
        vocab.setdefault(token, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token="<unk>",
                              model_max_length=77)
    images = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                                image_mean=list(OPENAI_MEAN), image_std=list(OPENAI_STD))
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": 0, "eos_token_id": 1},
        vision_config={"image_size": image_size, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=16,
    )
    setattr(config, STANDIN_KEY, standin_marker())  # saved in config.json
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def seed_hub_cache(repo_id: str, folder: str | Path, cache_dir: str | Path, revision: str = "0" * 40) -> Path:
    """Places ``folder``'s files in a Hugging Face cache as repo ``repo_id`` (so ``hf-hub:`` loads offline)."""
    root = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in Path(folder).iterdir():
        if file.is_file():
            shutil.copyfile(file, snapshot / file.name)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return snapshot


BIOMEDCLIP_REPO = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
BIOMEDBERT_REPO = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"


def save_tiny_bert(folder: str | Path, *, words: tuple[str, ...] = ()) -> Path:
    """A tiny BERT config and WordPiece tokenizer (no weights: open_clip reads only the config and tokenizer)."""
    from transformers import BertConfig, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters), ",", ".", *words]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), model_max_length=256).save_pretrained(folder)
    config = BertConfig(vocab_size=len(dict.fromkeys(vocab)), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=256,
                        initializer_range=0.5)  # BERT's 0.02 makes every prompt's feature alike
    setattr(config, STANDIN_KEY, standin_marker())
    config.save_pretrained(folder)
    return folder


def seed_tiny_biomedclip(cache_dir: str | Path, work_dir: str | Path, *, seed: int = 0, image_size: int = 32) -> str:
    """Seeds a Hugging Face cache with a tiny BiomedCLIP-family model under BiomedCLIP's real repo ids.

    Two repos, as the real model: the open_clip repo (timm ViT image tower, HF text tower, ``open_clip_config.json``
    with BiomedCLIP's text settings) and the BiomedBERT repo that open_clip reads the text config and tokenizer
    from. ``create_model("biomedclip")`` then runs offline on the stand-in. Returns the open_clip repo id.
    """
    import open_clip
    from safetensors.torch import save_file

    work_dir = Path(work_dir)
    seed_hub_cache(BIOMEDBERT_REPO, save_tiny_bert(work_dir / "biomedbert"), cache_dir)
    folder = work_dir / "biomedclip"
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"timm_model_name": "test_vit", "timm_model_pretrained": False, "timm_pool": "",
                       "timm_proj": "linear", "image_size": image_size},
        "text_cfg": {"hf_model_name": BIOMEDBERT_REPO, "hf_tokenizer_name": BIOMEDBERT_REPO, "hf_proj_type": "mlp",
                     "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 256},
    }
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)},
              STANDIN_KEY: standin_marker()}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1))
    torch.manual_seed(seed)
    build_cfg = json.loads(json.dumps(model_cfg))
    build_cfg["text_cfg"]["hf_model_pretrained"] = False  # random weights: this *is* the stand-in
    model = open_clip.model.CustomTextCLIP(**build_cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    seed_hub_cache(BIOMEDCLIP_REPO, folder, cache_dir)
    return BIOMEDCLIP_REPO


def stored_provenance(name_or_spec: str) -> dict[str, str]:
    """The provenance of an open_clip model's files without loading it: read from its ``open_clip_config.json``
    in a folder (``local-dir:``) or in the local Hugging Face cache (``hf-hub:``; nothing is downloaded).

    Returns:
        ``{"weights": "stand-in" | "pretrained" | "unknown", "detail": ...}``; ``unknown`` when the config is
        neither on disk nor cached, or for other schemes.
    """
    from .registry import MODEL_SPECS

    spec = MODEL_SPECS[name_or_spec].spec if name_or_spec in MODEL_SPECS else name_or_spec
    scheme, _, identifier = spec.partition(":")
    path = None
    if scheme == "local-dir":
        path = Path(identifier) / "open_clip_config.json"
    elif scheme == "hf-hub":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(identifier, "open_clip_config.json")
        path = Path(cached) if isinstance(cached, str) else None
    if path is None or not path.is_file():
        return {"weights": "unknown", "detail": f"{spec}: config not found locally"}
    return {"weights": STANDIN if is_standin(json_marker(path)) else PRETRAINED, "detail": f"{spec} ({path})"}
