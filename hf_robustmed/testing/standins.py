"""Tiny stand-ins of the open_clip, transformers and BiomedCLIP families, and a Hub-cache seeder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..models.open_clip_family import BIOMEDCLIP_REPO
from ..models.preprocess import OPENAI_MEAN, OPENAI_STD
from ..models.provenance import STANDIN_KEY, standin_marker
from ..models.unimedclip import TEXT_MODEL as BIOMEDBERT_REPO

__all__ = [
    "BIOMEDBERT_REPO",
    "BIOMEDCLIP_REPO",
    "save_tiny_bert",
    "save_tiny_open_clip",
    "save_tiny_transformers_clip",
    "seed_hub_cache",
    "seed_tiny_biomedclip",
]


def _openai_preprocess_cfg() -> dict[str, list[float]]:
    return {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)}


def save_tiny_open_clip(folder: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny open_clip CLIP (1-layer ViT and text transformer, CLIP BPE tokenizer) in open_clip's Hub layout.

    Args:
        folder: Where to write ``open_clip_config.json`` and ``open_clip_model.safetensors``.
        seed: Seed of the random weights.
        image_size: Input side in pixels.

    Returns:
        ``folder`` (loadable as ``local-dir:FOLDER``).
    """
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
    config = {"model_cfg": model_cfg, "preprocess_cfg": _openai_preprocess_cfg(), STANDIN_KEY: standin_marker()}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1))
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**model_cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder


def _letters_vocab() -> dict[str, int]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in letters + [f"{c}</w>" for c in letters] + ["<unk>"]:
        vocab.setdefault(token, len(vocab))
    return vocab


def save_tiny_transformers_clip(folder: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny transformers ``CLIPModel`` with a working ``CLIPProcessor`` (byte-level BPE over a small vocab).

    Returns:
        ``folder`` (loadable as ``transformers:FOLDER``).
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _letters_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token="<unk>", model_max_length=77
    )
    images = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=list(OPENAI_MEAN),
        image_std=list(OPENAI_STD),
    )
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": 0,
            "eos_token_id": 1,
        },
        vision_config={
            "image_size": image_size,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=16,
    )
    setattr(config, STANDIN_KEY, standin_marker())  # saved in config.json
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def seed_hub_cache(repo_id: str, folder: str | Path, cache_dir: str | Path, revision: str = "0" * 40) -> Path:
    """Places ``folder``'s files in a Hugging Face cache as repo ``repo_id`` (so ``hf-hub:`` loads offline).

    Returns:
        The snapshot folder the files were copied into.
    """
    root = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in Path(folder).iterdir():
        if file.is_file():
            shutil.copyfile(file, snapshot / file.name)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return snapshot


def save_tiny_bert(folder: str | Path, *, words: tuple[str, ...] = ()) -> Path:
    """A tiny BERT config and WordPiece tokenizer (no weights: open_clip reads only the config and tokenizer)."""
    from transformers import BertConfig, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters), ",", ".", *words]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    BertTokenizer(str(folder / "vocab.txt"), model_max_length=256).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(dict.fromkeys(vocab)),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        initializer_range=0.5,
    )  # BERT's 0.02 makes every prompt's feature alike
    setattr(config, STANDIN_KEY, standin_marker())
    config.save_pretrained(folder)
    return folder


def _biomedclip_cfg(image_size: int) -> dict:
    return {
        "embed_dim": 16,
        "vision_cfg": {
            "timm_model_name": "test_vit",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": image_size,
        },
        "text_cfg": {
            "hf_model_name": BIOMEDBERT_REPO,
            "hf_tokenizer_name": BIOMEDBERT_REPO,
            "hf_proj_type": "mlp",
            "hf_pooler_type": "cls_last_hidden_state_pooler",
            "context_length": 256,
        },
    }


def seed_tiny_biomedclip(cache_dir: str | Path, work_dir: str | Path, *, seed: int = 0, image_size: int = 32) -> str:
    """Seeds a Hugging Face cache with a tiny BiomedCLIP-family model under BiomedCLIP's real repo ids.

    Two repos, as the real model: the open_clip repo (timm ViT image tower, HF text tower, ``open_clip_config.json``
    with BiomedCLIP's text settings) and the BiomedBERT repo that open_clip reads the text config and tokenizer
    from. ``create_model("biomedclip")`` then runs offline on the stand-in.

    Returns:
        The open_clip repo id.
    """
    import open_clip
    from safetensors.torch import save_file

    work_dir = Path(work_dir)
    seed_hub_cache(BIOMEDBERT_REPO, save_tiny_bert(work_dir / "biomedbert"), cache_dir)
    folder = work_dir / "biomedclip"
    folder.mkdir(parents=True, exist_ok=True)
    model_cfg = _biomedclip_cfg(image_size)
    config = {"model_cfg": model_cfg, "preprocess_cfg": _openai_preprocess_cfg(), STANDIN_KEY: standin_marker()}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1))
    torch.manual_seed(seed)
    build_cfg = json.loads(json.dumps(model_cfg))
    build_cfg["text_cfg"]["hf_model_pretrained"] = False  # random weights: this *is* the stand-in
    model = open_clip.model.CustomTextCLIP(**build_cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    seed_hub_cache(BIOMEDCLIP_REPO, folder, cache_dir)
    return BIOMEDCLIP_REPO
