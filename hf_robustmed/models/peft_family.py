"""PEFT adapters over open_clip models: ``peft:ADAPTER`` (a folder or a Hub repo), e.g. RobustMedCLIP.

The adapter's ``adapter_config.json`` names its base in ``base_model_name_or_path``; the base is built with the
open_clip loaders of this zoo (a Hub id → ``hf-hub:``, a folder → ``local-dir:``) and the adapter is injected with
``PeftModel.from_pretrained``, exactly as a user would do by hand.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .base import ZeroShotModel
from .registry import create_model, register_loader, register_model

DEFAULT_ADAPTER_REPO = "hf-robustmed/RobustMedCLIP"


def require_peft():
    """The ``peft`` module, or an ImportError naming the extra that installs it."""
    try:
        import peft
    except ImportError:
        raise ImportError("adapter models need peft: pip install 'hf-robustmed[adapt]'") from None
    return peft


def base_spec(base_model_name_or_path: str) -> str:
    """The zoo spec of an adapter's base: a local folder → ``local-dir:``, otherwise an open_clip Hub repo."""
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
