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
from .provenance import STANDIN, STANDIN_KEY, is_standin, loaded_provenance
from .registry import create_model, register_loader, register_model, resolve_spec

DEFAULT_ADAPTER_REPO = "hf-robustmed/RobustMedCLIP"


def require_peft():
    """The ``peft`` module, or an ImportError naming the extra that installs it."""
    return require("peft", "adapt", "adapter models")


def base_model_id(name_or_spec: str) -> str:
    """What ``adapter_config.json`` records as the base: a bare Hub repo id, or a folder's absolute path.

    Raises:
        ValueError: For bases that PEFT users could not rebuild from a Hub id or folder (other schemes).
    """
    scheme, _, identifier = resolve_spec(name_or_spec).partition(":")
    if scheme == "hf-hub":
        return identifier
    if scheme == "local-dir":
        return str(Path(identifier).resolve())
    raise ValueError(
        f"LoRA adaptation needs an open_clip base from the Hub (hf-hub:) or a folder (local-dir:), got {name_or_spec!r}"
    )


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
    """A PEFT adapter folder or Hub repo over its open_clip base model (LoRA injected, inference mode).

    Its family is derived from its base's (:func:`adapter_family`), whatever its name.
    """
    peft = require_peft()
    config = peft.PeftConfig.from_pretrained(identifier)
    base = create_model(base_spec(config.base_model_name_or_path), device=device)
    module = peft.PeftModel.from_pretrained(base.module, identifier).to(device)
    module.eval()
    return replace(
        base,
        name=name,
        module=module,
        image_encoder=module.encode_image,
        provenance=adapter_provenance(identifier, name, base.provenance),
        family=adapter_family(base.family),
    )


def adapter_family(base_family: str | None) -> str | None:
    """The family of a LoRA adapter over a model of ``base_family``: ``"<base>-lora"`` (``None`` without one).

    An adapter is a family of its own, not its base's: the original RobustMedCLIP code normalised the text features
    of its LoRA-tuned BiomedCLIP (``BiomedCLIPViT_LoRA.text_features``) but not those of BiomedCLIP, so under the
    ``rmc`` protocol a ``biomedclip-lora`` model must not get BiomedCLIP's raw text features (D2).
    """
    return f"{base_family}-lora" if base_family else None


def _card_marker(identifier: str):
    """The stand-in marker in an adapter's card data (``README.md``), or ``None``."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.repocard import metadata_load

    card = Path(identifier) / "README.md"
    if not Path(identifier).is_dir():
        try:
            card = Path(hf_hub_download(identifier, "README.md"))
        except EntryNotFoundError:
            return None
    return (metadata_load(card) or {}).get(STANDIN_KEY) if card.is_file() else None


def adapter_provenance(identifier: str, name: str, base: dict) -> dict:
    """An adapter's provenance: a stand-in when its base is one, or when its card says it was trained on one."""
    standin_base = base.get("weights") == STANDIN
    marker = {"weights": STANDIN} if standin_base else _card_marker(identifier)
    why = " (a stand-in base)" if standin_base else " (trained on a stand-in base)" if is_standin(marker) else ""
    return loaded_provenance(name, marker, f"adapter {identifier} over {base.get('detail')}{why}")


register_model(
    "robustmedclip",
    f"peft:{DEFAULT_ADAPTER_REPO}",
    description="RobustMedCLIP: BiomedCLIP + few-shot LoRA adapter (trained with hf-robustmed)",
    license="mit",
    family=adapter_family("biomedclip"),
)
