"""transformers CLIP models: ``transformers:ID_OR_PATH`` (e.g. PubMedCLIP)."""

from __future__ import annotations

import torch

from .._optional import require
from .base import ZeroShotModel
from .preprocess import from_clip_image_processor
from .provenance import STANDIN_KEY, loaded_provenance
from .registry import register_loader, register_model


def _features(output) -> torch.Tensor:
    # transformers 5 returns a ModelOutput with pooler_output from get_*_features; older versions a tensor.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


@register_loader("transformers")
def load_transformers_clip(identifier: str, name: str, device: str) -> ZeroShotModel:
    """A ``CLIPModel`` and its ``CLIPProcessor`` (weights from safetensors only)."""
    transformers = require("transformers", "models", "transformers models")
    model = transformers.CLIPModel.from_pretrained(identifier, use_safetensors=True).to(device).eval()
    processor = transformers.CLIPProcessor.from_pretrained(identifier)

    def encode_text(texts: list[str]) -> torch.Tensor:
        inputs = processor(text=texts, padding=True, truncation=True, return_tensors="pt").to(device)
        return _features(model.get_text_features(**inputs))

    return ZeroShotModel(
        name=name,
        module=model,
        preprocess=lambda image: processor(images=image, return_tensors="pt")["pixel_values"][0],
        image_encoder=lambda pixels: _features(model.get_image_features(pixel_values=pixels.to(device))),
        text_encoder=encode_text,
        logit_scale=float(model.logit_scale.detach().exp()),
        provenance=loaded_provenance(name, getattr(model.config, STANDIN_KEY, None), f"transformers:{identifier}"),
        transform=from_clip_image_processor(processor.image_processor),
    )


register_model(
    "pubmedclip",
    "transformers:flaviagiammarino/pubmed-clip-vit-base-patch32",
    description="PubMedCLIP: CLIP ViT-B/32 fine-tuned on ROCO",
    license="mit",
)
