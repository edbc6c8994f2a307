"""The interface every zero-shot model implements."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
from PIL import Image

from .preprocess import ImageTransform
from .prompts import DEFAULT_TEMPLATES, build_prompts

logger = logging.getLogger(__name__)


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
        provenance: Where the weights come from: ``provenance["weights"]`` is ``"pretrained"`` or ``"stand-in"``
            (a tiny random model written by :mod:`hf_robustmed.testing`, whose outputs mean nothing); the
            optional ``provenance["detail"]`` names the file or repo the weights were read from.
        transform: ``preprocess`` as data, run batched on uint8 tensors by :meth:`preprocess_batch`
            (``None``: no batched form, :meth:`preprocess_batch` falls back to ``preprocess`` image by image).
        family: The model family (``"clip"``, ``"biomedclip"``, ``"unimedclip"``, ``"medclip"``; ``None``: none
            known), set by its loader from the weights it loads (an adapter inherits its base's); the zero-shot
            protocols switch on it (:func:`hf_robustmed.protocols.apply_protocol`).
    """

    name: str
    module: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    image_encoder: Callable[[torch.Tensor], torch.Tensor]
    text_encoder: Callable[[list[str]], torch.Tensor]
    logit_scale: float
    provenance: dict = field(default_factory=lambda: {"weights": "pretrained"})
    transform: ImageTransform | None = None
    family: str | None = None

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings of a preprocessed batch."""
        return torch.nn.functional.normalize(self.image_encoder(pixels).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings."""
        return torch.nn.functional.normalize(self.text_encoder(texts).float(), dim=-1)

    @torch.no_grad()
    def classifier(
        self, class_names: Sequence[str], dataset: str, templates: Sequence[str] = DEFAULT_TEMPLATES
    ) -> torch.Tensor:
        """``C × D`` class weights: per class, the normalised mean of its normalised prompt embeddings."""
        weights = [self.encode_text(prompts).mean(dim=0) for prompts in build_prompts(class_names, dataset, templates)]
        return torch.nn.functional.normalize(torch.stack(weights), dim=-1)

    def logits(self, image_features: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
        """``logit_scale · cos`` between normalised image features and class weights."""
        return self.logit_scale * image_features @ classifier.T

    def preprocess_arrays(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """A batch tensor from uint8 arrays (grey images are replicated to RGB, as every model expects RGB)."""
        return torch.stack([self.preprocess(Image.fromarray(image).convert("RGB")) for image in images])

    def preprocess_batch(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """A float ``N×3×S×S`` batch from uint8 images, on the images' device.

        With ``transform`` set, preprocessing runs batched with tensor ops where the images are (see
        :class:`~hf_robustmed.models.preprocess.ImageTransform`). Without (a user-made model), each image goes
        through the per-image PIL ``preprocess`` on the CPU, which is slower; this is logged once per model name.

        Args:
            images: uint8 ``N×C×H×W`` (C = 1 grey or 3 RGB) or a sequence of uint8 ``C×H×W`` tensors.
        """
        if self.transform is not None:
            return self.transform(images)
        return _per_image(self.preprocess, images, self.name)


def _per_image(
    preprocess: Callable[[Image.Image], torch.Tensor], images: torch.Tensor | Sequence[torch.Tensor], name: str
) -> torch.Tensor:
    """``preprocess`` image by image (grey replicated to RGB) on the CPU, the batch moved to the images' device."""
    _log_fallback(name)
    arrays = [image.permute(1, 2, 0).cpu().numpy() for image in images]
    device = images.device if isinstance(images, torch.Tensor) else images[0].device
    return torch.stack(
        [preprocess(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).convert("RGB")) for a in arrays]
    ).to(device)


@cache
def _log_fallback(name: str) -> None:
    logger.debug("model %r has no batched transform: preprocessing each image with its PIL preprocess on the CPU", name)
