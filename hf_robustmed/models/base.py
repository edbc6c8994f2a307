"""The interface every zero-shot model implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .prompts import DEFAULT_TEMPLATES, build_prompts


@dataclass
class ZeroShotModel:
    """A vision-language model as a zero-shot classifier.

    Attributes:
        name: Registry name or spec it was created from.
        module: The underlying ``torch.nn.Module`` (open_clip or transformers model).
        preprocess: The model's own image transform, PIL image → tensor.
        image_encoder: Batch of preprocessed images → image embeddings.
        text_encoder: List of strings → text embeddings.
        logit_scale: Multiplier of cosine similarities (the model's learned scale).
    """

    name: str
    module: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    image_encoder: Callable[[torch.Tensor], torch.Tensor]
    text_encoder: Callable[[list[str]], torch.Tensor]
    logit_scale: float

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings of a preprocessed batch."""
        return torch.nn.functional.normalize(self.image_encoder(pixels).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings."""
        return torch.nn.functional.normalize(self.text_encoder(texts).float(), dim=-1)

    @torch.no_grad()
    def classifier(self, class_names: Sequence[str], dataset: str, templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
        """``C × D`` class weights: per class, the normalised mean of its normalised prompt embeddings."""
        weights = [self.encode_text(prompts).mean(dim=0) for prompts in build_prompts(class_names, dataset, templates)]
        return torch.nn.functional.normalize(torch.stack(weights), dim=-1)

    def logits(self, image_features: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
        """``logit_scale · cos`` between normalised image features and class weights."""
        return self.logit_scale * image_features @ classifier.T

    def preprocess_arrays(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """A batch tensor from uint8 arrays (grey images are replicated to RGB, as every model expects RGB)."""
        return torch.stack([self.preprocess(Image.fromarray(image).convert("RGB")) for image in images])
