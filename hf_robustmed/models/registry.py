"""The model registry: names → spec strings, and the loaders of each spec scheme.

Spec schemes (open_clip's own ``hf-hub:`` and ``local-dir:`` prefixes, plus two of ours):

* ``open_clip:NAME/PRETRAINED`` — an open_clip architecture and pretrained tag (``ViT-B-16-quickgelu/openai``);
* ``hf-hub:ORG/REPO`` — an open_clip model repo on the Hub (``open_clip_config.json`` + weights);
* ``local-dir:PATH`` — the same layout in a local folder;
* ``transformers:ID_OR_PATH`` — a transformers ``CLIPModel`` with its processor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .base import ZeroShotModel


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: where its weights come from, and what it is."""

    name: str
    spec: str
    description: str
    license: str


MODEL_SPECS: dict[str, ModelSpec] = {}
_LOADERS: dict[str, Callable[[str, str, str], ZeroShotModel]] = {}


def register_model(name: str, spec: str, *, description: str, license: str) -> None:
    """Registers ``name`` as an alias of ``spec``."""
    if name in MODEL_SPECS:
        raise ValueError(f"model {name!r} is already registered")
    MODEL_SPECS[name] = ModelSpec(name, spec, description, license)


def register_loader(scheme: str) -> Callable:
    """Decorator registering ``fn(identifier, name, device) -> ZeroShotModel`` for specs ``scheme:identifier``."""

    def decorator(fn: Callable[[str, str, str], ZeroShotModel]) -> Callable[[str, str, str], ZeroShotModel]:
        _LOADERS[scheme] = fn
        return fn

    return decorator


def _load_families() -> None:
    # Importing a family module registers its loader (and its own model names).
    from . import medclip, open_clip_family, peft_family, transformers_family  # noqa: F401
    from . import unimedclip  # noqa: F401


def list_models() -> list[str]:
    """Registered model names."""
    _load_families()
    return list(MODEL_SPECS)


def create_model(name_or_spec: str, device: str = "cpu") -> ZeroShotModel:
    """Creates a zero-shot model from a registered name or a spec string (see the module docstring).

    Raises:
        ValueError: For an unknown name or scheme (the message lists the valid ones).
        ImportError: When the model family's optional dependency is missing (naming the pip extra).
    """
    _load_families()
    spec = MODEL_SPECS[name_or_spec].spec if name_or_spec in MODEL_SPECS else name_or_spec
    scheme, sep, identifier = spec.partition(":")
    if not sep or scheme not in _LOADERS:
        raise ValueError(
            f"unknown model {name_or_spec!r}: not a registered name ({', '.join(MODEL_SPECS)}) nor a spec "
            f"with a scheme among {', '.join(s + ':' for s in _LOADERS)}"
        )
    return _LOADERS[scheme](identifier, name_or_spec, device)


register_model("clip-vit-b16", "open_clip:ViT-B-16-quickgelu/openai",
               description="OpenAI CLIP ViT-B/16 (QuickGELU), the reference of the CLIP-normalised mCE", license="mit")
register_model("clip-rn50", "open_clip:RN50-quickgelu/openai",
               description="OpenAI CLIP ResNet-50 (QuickGELU)", license="mit")
register_model("biomedclip", "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
               description="BiomedCLIP: ViT-B/16 + PubMedBERT trained on PMC-15M", license="mit")
register_model("pubmedclip", "transformers:flaviagiammarino/pubmed-clip-vit-base-patch32",
               description="PubMedCLIP: CLIP ViT-B/32 fine-tuned on ROCO", license="mit")
