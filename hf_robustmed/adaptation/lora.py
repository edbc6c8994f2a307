"""LoRA on an open_clip model's image tower through PEFT, and the training head around it."""

from __future__ import annotations

import torch

from ..models.peft_family import require_peft


def add_lora(
    module: torch.nn.Module,
    base_id: str,
    *,
    rank: int,
    alpha: float,
    dropout: float,
    target_modules: str,
    init_lora_weights: bool = True,
):
    """Wraps ``module`` (modified in place) in a PEFT LoRA model whose adapter config names ``base_id``.

    Every weight but the LoRA matrices is frozen. Raises ValueError when the regex matches no module.
    """
    peft = require_peft()
    module.name_or_path = base_id  # PEFT copies it into base_model_name_or_path (SPEC §8.3)
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        target_modules=target_modules,
        init_lora_weights=init_lora_weights,
    )
    try:
        return peft.get_peft_model(module, config)
    except ValueError as error:
        if "not found in the base model" in str(error) or "Target modules" in str(error):
            raise ValueError(f"target_modules {target_modules!r} matches no module of the base model") from None
        raise


class LoraClassifier(torch.nn.Module):
    """Image tower with LoRA, scored against frozen class text features: the training objective (SPEC §7.1).

    ``logits = f(x) · t̂ᵀ / temperature`` with t̂ the L2-normalised class prompt features and f(x) the image
    features, unnormalised by default as in the paper (their norm acts as an implicit temperature).
    """

    def __init__(
        self,
        peft_model: torch.nn.Module,
        text_features: torch.Tensor,
        *,
        temperature: float = 1.0,
        normalize_image_features: bool = False,
    ):
        super().__init__()
        self.peft_model = peft_model
        self.register_buffer("text_features", torch.nn.functional.normalize(text_features.float(), dim=-1))
        self.temperature = temperature
        self.normalize_image_features = normalize_image_features

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.peft_model.encode_image(pixels).float()
        return torch.nn.functional.normalize(features, dim=-1) if self.normalize_image_features else features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_features(pixels) @ self.text_features.T / self.temperature


def trainable_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in module.parameters())
