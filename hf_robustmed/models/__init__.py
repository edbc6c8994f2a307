"""Zero-shot classifiers behind one interface, created from a registry name or a spec string.

>>> from hf_robustmed.models import create_model
>>> model = create_model("biomedclip")                      # a registered name
>>> model = create_model("hf-hub:org/some-open_clip-model")  # or open_clip:NAME/PRETRAINED, local-dir:PATH,
...                                                         # transformers:ID_OR_PATH
"""

from .base import ZeroShotModel
from .prompts import DEFAULT_TEMPLATES, build_prompts
from .registry import MODEL_SPECS, ModelSpec, create_model, family_of, list_models, register_model

__all__ = [
    "DEFAULT_TEMPLATES",
    "MODEL_SPECS",
    "ModelSpec",
    "ZeroShotModel",
    "build_prompts",
    "create_model",
    "family_of",
    "list_models",
    "register_model",
]
