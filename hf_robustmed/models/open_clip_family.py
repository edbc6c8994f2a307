"""open_clip models: ``open_clip:NAME/PRETRAINED``, ``hf-hub:ORG/REPO`` and ``local-dir:PATH``."""

from __future__ import annotations

from pathlib import Path

from .._optional import require
from .base import ZeroShotModel
from .preprocess import from_open_clip
from .registry import register_loader
from .standins import json_marker, loaded_provenance

WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


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


def _wrap(name: str, model_id: str, pretrained: str | None, device: str) -> ZeroShotModel:
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
    )


@register_loader("open_clip")
def load_open_clip(identifier: str, name: str, device: str) -> ZeroShotModel:
    """``NAME/PRETRAINED``: an open_clip architecture with a pretrained tag (downloaded by open_clip)."""
    arch, _, pretrained = identifier.partition("/")
    if not pretrained:
        raise ValueError(f"open_clip spec needs NAME/PRETRAINED, got {identifier!r} (e.g. ViT-B-16-quickgelu/openai)")
    return _wrap(name, arch, pretrained, device)


@register_loader("hf-hub")
def load_hf_hub(identifier: str, name: str, device: str) -> ZeroShotModel:
    """An open_clip model repo on the Hub (config + weights), e.g. BiomedCLIP."""
    _require_weights("hf-hub", identifier)
    return _wrap(name, f"hf-hub:{identifier}", None, device)


@register_loader("local-dir")
def load_local_dir(identifier: str, name: str, device: str) -> ZeroShotModel:
    """A folder in open_clip's Hub layout (``open_clip_config.json`` + weights)."""
    if not (Path(identifier) / "open_clip_config.json").is_file():
        raise ValueError(f"{identifier} has no open_clip_config.json")
    _require_weights("local-dir", identifier)
    return _wrap(name, f"local-dir:{identifier}", None, device)


