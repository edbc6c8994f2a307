"""PEFT adapters over open_clip models: ``peft:ADAPTER`` (a folder or a Hub repo), e.g. RobustMedCLIP.

The adapter's ``adapter_config.json`` names its base in ``base_model_name_or_path``; the base is built with the
open_clip loaders of this zoo (a Hub id → ``hf-hub:``, a folder → ``local-dir:``) and the adapter is injected with
``PeftModel.from_pretrained``, exactly as a user would do by hand.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .._optional import require
from .base import ZeroShotModel
from .registry import MODEL_SPECS, create_model, register_loader, register_model

DEFAULT_ADAPTER_REPO = "hf-robustmed/RobustMedCLIP"


def require_peft():
    """The ``peft`` module, or an ImportError naming the extra that installs it."""
    return require("peft", "adapt", "adapter models")


def base_model_id(name_or_spec: str) -> str:
    """What ``adapter_config.json`` records as the base: a bare Hub repo id, or a folder's absolute path.

    Raises:
        ValueError: For bases that PEFT users could not rebuild from a Hub id or folder (other schemes).
    """
    spec = MODEL_SPECS[name_or_spec].spec if name_or_spec in MODEL_SPECS else name_or_spec
    scheme, _, identifier = spec.partition(":")
    if scheme == "hf-hub":
        return identifier
    if scheme == "local-dir":
        return str(Path(identifier).resolve())
    raise ValueError(f"LoRA adaptation needs an open_clip base from the Hub (hf-hub:) or a folder (local-dir:), "
                     f"got {name_or_spec!r}")


def base_spec(base_model_name_or_path: str) -> str:
    """The zoo spec of an adapter's base (the inverse of :func:`base_model_id`): a local folder → ``local-dir:``,
    otherwise an open_clip Hub repo."""
    if not base_model_name_or_path:
        raise ValueError("the adapter's adapter_config.json has no base_model_name_or_path")
    if Path(base_model_name_or_path).is_dir():
        return f"local-dir:{base_model_name_or_path}"
    return f"hf-hub:{base_model_name_or_path.removeprefix('hf-hub:')}"


@register_loader("peft")
def load_peft(identifier: str, name: str, device: str) -> ZeroShotModel:
    """A PEFT adapter folder or Hub repo over its open_clip base model (LoRA injected, inference mode)."""
    peft = require_peft()
    config = peft.PeftConfig.from_pretrained(identifier)
    base = create_model(base_spec(config.base_model_name_or_path), device=device)
    module = peft.PeftModel.from_pretrained(base.module, identifier).to(device)
    module.eval()
    return replace(base, name=name, module=module, image_encoder=module.encode_image)


register_model("robustmedclip", f"peft:{DEFAULT_ADAPTER_REPO}",
               description="RobustMedCLIP: BiomedCLIP + few-shot LoRA adapter (trained with hf-robustmed)", license="mit")
