"""Zero-shot logits computed with each family's own library, without the zoo: the independent oracle of the tests.

open_clip's ``model(image, text)`` (its transform, tokenizer, normalisation and logit scale) and transformers'
``CLIPModel(...).logits_per_image`` with its ``CLIPProcessor``; one prompt per class.
"""

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image


def _rgb(images: Sequence[np.ndarray]) -> list[Image.Image]:
    return [Image.fromarray(image).convert("RGB") for image in images]


def open_clip_logits(model_id: str, images: Sequence[np.ndarray], prompts: Sequence[str]) -> torch.Tensor:
    """``logit_scale · cos`` of open_clip's own forward for ``model_id`` (``local-dir:PATH``, ``hf-hub:ID``)."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(model_id)
    tokenizer = open_clip.get_tokenizer(model_id)
    with torch.no_grad():
        image, text, scale = model.eval()(torch.stack([preprocess(i) for i in _rgb(images)]), tokenizer(list(prompts)))
    return scale * image @ text.T


def transformers_logits(folder: str, images: Sequence[np.ndarray], prompts: Sequence[str]) -> torch.Tensor:
    """transformers' ``logits_per_image`` of the ``CLIPModel`` in ``folder``."""
    from transformers import CLIPModel, CLIPProcessor

    model, processor = CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
    inputs = processor(text=list(prompts), images=_rgb(images), return_tensors="pt", padding=True, truncation=True)
    with torch.no_grad():
        return model(**inputs).logits_per_image


def native_logits(spec: str, images: Sequence[np.ndarray], prompts: Sequence[str]) -> torch.Tensor:
    """The oracle of a zoo spec: ``local-dir:`` / ``hf-hub:`` through open_clip, ``transformers:`` through
    transformers."""
    scheme, _, identifier = spec.partition(":")
    if scheme == "transformers":
        return transformers_logits(identifier, images, prompts)
    if scheme in ("local-dir", "hf-hub"):
        return open_clip_logits(spec, images, prompts)
    raise ValueError(f"no native oracle for {spec!r}")
