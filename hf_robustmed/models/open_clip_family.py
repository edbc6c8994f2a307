"""open_clip models: ``open_clip:NAME/PRETRAINED``, ``hf-hub:ORG/REPO`` and ``local-dir:PATH``.

Families: an ``open_clip:`` model with OpenAI's weights (tag ``openai``) is ``"clip"``; a Hub repo of
:data:`HUB_FAMILIES` (BiomedCLIP's) is its family; a local folder has none.
"""

from __future__ import annotations

from pathlib import Path

from .._optional import require
from .base import ZeroShotModel
from .preprocess import from_open_clip
from .provenance import json_marker, loaded_provenance
from .registry import register_loader, register_model

WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
BIOMEDCLIP_REPO = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
# Hub repo-id prefix → family of the weights it holds.
HUB_FAMILIES = (("microsoft/BiomedCLIP-", "biomedclip"),)


def open_clip_family(identifier: str) -> str | None:
    """The family of ``open_clip:NAME/PRETRAINED``: ``"clip"`` for OpenAI's weights."""
    return "clip" if identifier.partition("/")[2] == "openai" else None


def hub_family(identifier: str) -> str | None:
    """The family of ``hf-hub:ORG/REPO``, from :data:`HUB_FAMILIES`."""
    return next((family for prefix, family in HUB_FAMILIES if identifier.startswith(prefix)), None)


def _open_clip():
    return require("open_clip", "models", "open_clip models")


def _require_weights(scheme: str, identifier: str) -> None:
    """open_clip only warns when a repo or folder has no weights and goes on with random ones: we refuse."""
    if scheme == "local-dir":
        if not any((Path(identifier) / name).is_file() for name in WEIGHT_FILES):
            raise ValueError(f"no weights ({' or '.join(WEIGHT_FILES)}) in {identifier}")
        return
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    for name in WEIGHT_FILES:
        try:
            hf_hub_download(identifier, name)
            return
        except (EntryNotFoundError, LocalEntryNotFoundError):
            continue
    raise ValueError(f"no weights ({' or '.join(WEIGHT_FILES)}) for {identifier} on the Hub or in the local cache")


def _provenance(name: str, model_id: str, pretrained: str | None) -> dict[str, str]:
    """``pretrained`` for an open_clip tag; else read from the repo's or folder's ``open_clip_config.json``."""
    scheme, _, identifier = model_id.partition(":")
    if scheme == "hf-hub":
        from huggingface_hub import hf_hub_download

        config = hf_hub_download(identifier, "open_clip_config.json")  # already fetched by open_clip
    elif scheme == "local-dir":
        config = Path(identifier) / "open_clip_config.json"
    else:
        return {"weights": "pretrained", "detail": f"open_clip {model_id}/{pretrained}"}
    return loaded_provenance(name, json_marker(config), f"{model_id} ({config})")


def _wrap(name: str, model_id: str, pretrained: str | None, device: str, family: str | None) -> ZeroShotModel:
    open_clip = _open_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(model_id, pretrained=pretrained, device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_id)
    return ZeroShotModel(
        name=name,
        module=model,
        preprocess=preprocess,
        image_encoder=model.encode_image,
        text_encoder=lambda texts: model.encode_text(tokenizer(texts).to(device)),
        logit_scale=float(model.logit_scale.detach().exp()) if hasattr(model, "logit_scale") else 100.0,
        provenance=_provenance(name, model_id, pretrained),
        transform=from_open_clip(open_clip.get_model_preprocess_cfg(model)),
        family=family,
    )


@register_loader("open_clip", family=open_clip_family)
def load_open_clip(identifier: str, name: str, device: str) -> ZeroShotModel:
    """``NAME/PRETRAINED``: an open_clip architecture with a pretrained tag (downloaded by open_clip)."""
    arch, _, pretrained = identifier.partition("/")
    if not pretrained:
        raise ValueError(f"open_clip spec needs NAME/PRETRAINED, got {identifier!r} (e.g. ViT-B-16-quickgelu/openai)")
    return _wrap(name, arch, pretrained, device, open_clip_family(identifier))


@register_loader("hf-hub", family=hub_family)
def load_hf_hub(identifier: str, name: str, device: str) -> ZeroShotModel:
    """An open_clip model repo on the Hub (config + weights), e.g. BiomedCLIP."""
    _require_weights("hf-hub", identifier)
    return _wrap(name, f"hf-hub:{identifier}", None, device, hub_family(identifier))


@register_loader("local-dir")
def load_local_dir(identifier: str, name: str, device: str) -> ZeroShotModel:
    """A folder in open_clip's Hub layout (``open_clip_config.json`` + weights)."""
    if not (Path(identifier) / "open_clip_config.json").is_file():
        raise ValueError(f"{identifier} has no open_clip_config.json")
    _require_weights("local-dir", identifier)
    return _wrap(name, f"local-dir:{identifier}", None, device, None)


register_model(
    "clip-vit-b16",
    "open_clip:ViT-B-16-quickgelu/openai",
    description="OpenAI CLIP ViT-B/16 (QuickGELU), the reference of the CLIP-normalised mCE",
    license="mit",
)
register_model(
    "clip-rn50", "open_clip:RN50-quickgelu/openai", description="OpenAI CLIP ResNet-50 (QuickGELU)", license="mit"
)
register_model(
    "biomedclip",
    f"hf-hub:{BIOMEDCLIP_REPO}",
    description="BiomedCLIP: ViT-B/16 + PubMedBERT trained on PMC-15M",
    license="mit",
)
