"""UniMed-CLIP (Khattak et al., 2024; github.com/mbzuai-oryx/UniMed-CLIP) on *mainline* open_clip.

The authors train and release UniMed-CLIP with a modified copy of open_clip 1.x vendored in their repository
(``src/open_clip``); pip's open_clip cannot load the released ``.pt`` ("missing the text encoder parameter",
mbzuai-oryx/UniMed-CLIP#7). This module maps the released checkpoint onto mainline open_clip's
``CustomTextCLIP`` (an open_clip ``VisionTransformer`` image tower and an ``HFTextEncoder`` text tower) without
the fork. Spec: ``unimedclip:PATH_OR_URL_OR_HUB_FILE``, where the identifier is a local file, an ``http(s)://``
URL (downloaded into ``~/.cache/hf_robustmed/unimedclip/``) or ``ORG/REPO/PATH/IN/REPO.pt`` (a file of a Hub
model repo, fetched with ``hf_hub_download`` so that it resolves offline from the Hub cache). The registered name
``unimedclip`` is the ViT-B/16 checkpoint mirrored by the RobustMedCLIP authors
(``razaimam45/RobustMedCLIP``, ``checkpoints/unimedclip/unimed_clip_vit_b16.pt``).

The fork's model, as read in its source (vendored copies of ``src/open_clip``: ``model.py``, ``hf_model.py``,
``factory.py``, ``transform.py``, ``tokenizer.py``; the sizes match the files of the authors' demo Space
``UzairK/unimed-clip-medical-image-zero-shot-classification``):

* ``CLIP(embed_dim, vision_cfg, text_cfg, quick_gelu, text_encoder_name)``: ``visual`` = ``VisualTransformer``
  (``conv1`` without bias, ``class_embedding``, ``positional_embedding``, ``ln_pre``,
  ``transformer.resblocks.N.{ln_1, attn (nn.MultiheadAttention: in_proj_weight/bias, out_proj), ln_2,
  mlp.c_fc, mlp.c_proj}``, ``ln_post`` on the class token, ``proj``); QuickGELU (``ViT-B-16-quickgelu`` and
  ``force_quick_gelu=True``); ``text_encoder`` = ``HFTextEncoder(text_encoder_name, output_dim=embed_dim,
  proj_type='mlp', pooler_type='cls_last_hidden_state_pooler')`` (BERT without its pooler; the class token of
  the last hidden state; ``proj`` = Linear(d, (d + e) // 2, no bias) → GELU → Linear(·, e, no bias)); the
  attention mask is ``input_ids != pad_token_id``; ``logit_scale`` a scalar log-scale.
* ``load_state_dict`` takes ``checkpoint['state_dict']`` when present and strips a ``module.`` prefix; the fork
  then loads with ``strict=False`` (a mismatch would pass silently there; here it is an error).
* Tokenizer ``HFTokenizer(text_encoder_name, context_length=256)`` (whitespace clean, padded to 256);
  ``get_mean_std()`` returns OpenAI's mean/std; the eval transform is Resize(224, bicubic) → CenterCrop(224) →
  RGB → ToTensor → Normalize.

Mainline open_clip uses the same names for the image tower (checked by building it), and ``text`` instead of
``text_encoder``: the mapping renames ``text_encoder.`` → ``text.`` and nothing else. The architecture (width,
depth, patch and image size, embedding size) is read from the checkpoint's tensors (heads = width / 64, as in
every OpenAI-layout ViT); the BERT config comes from its Hub repo (``AutoConfig``), as for BiomedCLIP.

What could not be verified against the real file (no download was possible when this was written): the
checkpoint's top-level layout. The loader accepts a bare state dict or ``{'state_dict': …}``, with or without
``module.``. The stand-in assumes an open_clip *training* checkpoint (``epoch``, ``name``, ``state_dict`` with
``module.`` keys, ``optimizer``), because the Hub's pickle scan of the sibling release
``UzairK/unimed_clip_vit_l14_base_text_encoder`` (4.97 GB ≈ 414 M parameters × 12 bytes, i.e. weights plus Adam
moments) lists exactly ``OrderedDict``, tensor storages, ``_codecs.encode``, ``numpy.dtype`` and
``numpy.core.multiarray.scalar`` (a NumPy float such as a cosine-scheduled learning rate). Those NumPy globals
are allow-listed for ``torch.load(weights_only=True)``; nothing else is. Whether the real BERT state dict holds
``embeddings.position_ids`` (serialised by transformers < 4.31) is unknown: it is allow-listed as ignorable.
The numbers of the mapped model have not been compared with the fork's on real weights.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._optional import require
from .base import ZeroShotModel
from .preprocess import OPENAI_MEAN, OPENAI_STD, ImageTransform
from .provenance import STANDIN_KEY, loaded_provenance
from .registry import register_loader, register_model

HUB_REPO = "razaimam45/RobustMedCLIP"
HUB_FILE = "checkpoints/unimedclip/unimed_clip_vit_b16.pt"
TEXT_MODEL = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
CONTEXT_LENGTH = 256
HEAD_WIDTH = 64
DOWNLOAD_DIR = "~/.cache/hf_robustmed/unimedclip"

# Fork key prefix → mainline open_clip (CustomTextCLIP) key prefix.
KEY_PREFIXES = (
    ("visual.", "visual."),
    ("text_encoder.transformer.", "text.transformer."),
    ("text_encoder.proj.", "text.proj."),
    ("logit_scale", "logit_scale"),
)

# Keys a release may hold that the mainline model does not, with why they are safe to drop.
IGNORABLE_UNEXPECTED: dict[str, str] = {
    r"^text_encoder\.transformer\.embeddings\.(position_ids|token_type_ids)$": (
        "BERT index buffers serialised by transformers < 4.31, recomputed now"
    ),
}

# Globals a released training checkpoint pickles besides tensors (Hub pickle scan of the sibling release):
# NumPy scalars (e.g. a scheduled learning rate) pickled by NumPy 1.x as numpy.core.multiarray.scalar.
NUMPY_SCALAR = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar
_DTYPE_CLASSES = [
    getattr(getattr(np, "dtypes", None), name, None) for name in ("Float64DType", "Float32DType", "Int64DType")
]
SAFE_GLOBALS = [
    (NUMPY_SCALAR, "numpy.core.multiarray.scalar"),
    NUMPY_SCALAR,
    np.dtype,
    *[cls for cls in _DTYPE_CLASSES if cls is not None],
]


@dataclass(frozen=True)
class UniMedArchitecture:
    """The image tower and embedding size, read from a checkpoint's tensors."""

    embed_dim: int
    image_size: int
    patch_size: int
    width: int
    layers: int

    def model_cfg(self, text_model: str = TEXT_MODEL) -> dict:
        """An open_clip ``CustomTextCLIP`` config (QuickGELU ViT + HF text tower without pretrained weights)."""
        return {
            "embed_dim": self.embed_dim,
            "quick_gelu": True,
            "vision_cfg": {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "width": self.width,
                "layers": self.layers,
                "head_width": HEAD_WIDTH,
            },
            "text_cfg": {
                "hf_model_name": text_model,
                "hf_tokenizer_name": text_model,
                "hf_proj_type": "mlp",
                "hf_pooler_type": "cls_last_hidden_state_pooler",
                "context_length": CONTEXT_LENGTH,
                "hf_model_pretrained": False,
            },
        }


def _open_clip():
    require("transformers", "models", "UniMed-CLIP")
    return require("open_clip", "models", "UniMed-CLIP")


# --------------------------------------------------------------------------------------------- the checkpoint


def resolve_checkpoint(identifier: str) -> Path:
    """The local path of ``identifier``: a file, an ``http(s)://`` URL (downloaded once) or ``ORG/REPO/PATH``.

    Raises:
        ValueError: If the file is neither on disk nor fetchable (the message names what was tried).
    """
    local = Path(os.path.expanduser(identifier))
    if local.is_file():
        return local
    if re.match(r"^https?://", identifier):
        from ..download import download

        return download(identifier, Path(os.path.expanduser(DOWNLOAD_DIR)) / Path(identifier.split("?")[0]).name)
    parts = identifier.split("/")
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"UniMed-CLIP checkpoint {identifier!r}: no such file, and not a Hub file ORG/REPO/PATH")
    return _hub_file("/".join(parts[:2]), "/".join(parts[2:]))


def _hub_file(repo_id: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename))
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError) as error:
        raise ValueError(
            f"UniMed-CLIP checkpoint {filename} of Hub repo {repo_id} is neither on the Hub nor in "
            f"the local cache ({type(error).__name__})"
        ) from None


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of a fork checkpoint: unwrapped from ``state_dict``, ``module.`` stripped.

    Loaded with ``torch.load(weights_only=True)`` and only the NumPy globals of :data:`SAFE_GLOBALS` allowed.

    Raises:
        ValueError: If the file needs other pickled objects, or holds no tensor state dict.
        ImportError: With torch < 2.6 (no allow-listing of globals for weights-only loading).
    """
    return _state_dict(_load_raw(path), path)


def _load_raw(path: str | os.PathLike):
    """The checkpoint object, loaded weights-only with the NumPy globals of :data:`SAFE_GLOBALS` allowed."""
    if not hasattr(torch.serialization, "safe_globals"):
        raise ImportError(
            "UniMed-CLIP checkpoints need torch>=2.6 (weights_only loading with allow-listed NumPy "
            "scalars): pip install -U 'hf-robustmed[models]'"
        )
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} is not a plain weights checkpoint (torch.load(weights_only=True) refused it; "
            f"it is never loaded with weights_only=False): {str(error).splitlines()[-1]}"
        ) from None


def _state_dict(checkpoint, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict of tensors (top-level keys: {_keys(checkpoint)})")
    if all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return dict(state)


def _is_zip(path: str | os.PathLike) -> bool:
    import zipfile

    return zipfile.is_zipfile(path)


def _keys(checkpoint) -> str:
    return ", ".join(map(str, list(checkpoint)[:10])) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__


def infer_architecture(state: Mapping[str, torch.Tensor]) -> UniMedArchitecture:
    """Reads the ViT's width, depth, patch and image size and the embedding size from the tensors.

    Raises:
        ValueError: If a tensor the architecture is read from is missing.
    """
    needed = ("visual.conv1.weight", "visual.positional_embedding", "visual.proj")
    missing = [key for key in needed if key not in state]
    if missing:
        raise ValueError(f"not a UniMed-CLIP (OpenAI-layout ViT) checkpoint: missing {', '.join(missing)}")
    conv = state["visual.conv1.weight"]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    layers = {int(m.group(1)) for key in state if (m := re.match(r"^visual\.transformer\.resblocks\.(\d+)\.", key))}
    return UniMedArchitecture(
        embed_dim=int(state["visual.proj"].shape[1]),
        image_size=int(conv.shape[-1] * grid),
        patch_size=int(conv.shape[-1]),
        width=int(conv.shape[0]),
        layers=len(layers),
    )


def to_mainline_key(key: str) -> str | None:
    """The mainline open_clip name of a fork key (``None`` when no prefix rule applies)."""
    for fork, mainline in KEY_PREFIXES:
        if key.startswith(fork):
            return mainline + key[len(fork) :]
    return None


def to_fork_key(key: str) -> str:
    """The fork's name of a mainline open_clip key (inverse of :func:`to_mainline_key`)."""
    for fork, mainline in KEY_PREFIXES:
        if key.startswith(mainline):
            return fork + key[len(mainline) :]
    raise ValueError(f"no fork name for {key!r}")


def map_state_dict(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames a fork state dict to mainline keys, strictly.

    Args:
        state: The fork's state dict (``module.`` already stripped).
        expected: The mainline model's state dict (names and shapes).

    Raises:
        ValueError: Naming every missing, unexpected (not allow-listed) and mis-shaped key.
    """
    mapped, unexpected = {}, []
    for key, value in state.items():
        target = to_mainline_key(key)
        if target in expected:
            mapped[target] = value
        elif not any(re.match(pattern, key) for pattern in IGNORABLE_UNEXPECTED):
            unexpected.append(key)
    missing = [key for key in expected if key not in mapped]
    shapes = [
        f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in mapped.items()
        if v.shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(
            "UniMed-CLIP checkpoint does not match the architecture: "
            f"missing keys {missing or 'none'}; unexpected keys {unexpected or 'none'}; "
            f"shape mismatches {shapes or 'none'}"
        )
    return mapped


# --------------------------------------------------------------------------------------------- the model


def build_model(architecture: UniMedArchitecture, text_model: str = TEXT_MODEL):
    """A randomly initialised mainline ``CustomTextCLIP`` of ``architecture`` (BERT config from ``text_model``)."""
    open_clip = _open_clip()
    return open_clip.model.CustomTextCLIP(**architecture.model_cfg(text_model))


def load_checkpoint(path: str | os.PathLike, text_model: str = TEXT_MODEL, *, state=None):
    """The mainline model with a fork checkpoint's weights (strict; see :func:`map_state_dict`); ``state``: the
    checkpoint's state dict when already read."""
    state = read_checkpoint(path) if state is None else state
    model = build_model(infer_architecture(state), text_model)
    model.load_state_dict(map_state_dict(state, model.state_dict()), strict=True)
    return model.eval()


def unimedclip_preprocess(image_size: int = 224):
    """The fork's eval transform: Resize (bicubic) → CenterCrop → RGB → ToTensor → Normalize (OpenAI's mean/std,
    the fork's ``get_mean_std()``)."""
    return _open_clip().image_transform(image_size, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD)


def unimedclip_transform(image_size: int = 224) -> ImageTransform:
    """:func:`unimedclip_preprocess` as data, for batched preprocessing on uint8 tensors."""
    return ImageTransform(size=image_size, mean=OPENAI_MEAN, std=OPENAI_STD)


@register_loader("unimedclip", family="unimedclip")
def load_unimedclip(identifier: str, name: str, device: str) -> ZeroShotModel:
    """``unimedclip:PATH_OR_URL_OR_HUB_FILE``: a UniMed-CLIP fork checkpoint on mainline open_clip.

    Raises:
        ValueError: If the checkpoint cannot be found, needs unsafe pickled objects or does not match.
        ImportError: Without open_clip/transformers (naming the ``models`` extra).
    """
    open_clip = _open_clip()
    path = resolve_checkpoint(identifier)
    checkpoint = _load_raw(path)
    model = load_checkpoint(path, state=_state_dict(checkpoint, path)).to(device)
    marker = checkpoint.get(STANDIN_KEY) if isinstance(checkpoint, Mapping) else None
    tokenizer = open_clip.tokenizer.HFTokenizer(TEXT_MODEL, context_length=CONTEXT_LENGTH)
    return ZeroShotModel(
        name=name,
        module=model,
        preprocess=unimedclip_preprocess(model.visual.image_size[0]),
        image_encoder=lambda pixels: model.encode_image(pixels.to(device)),
        text_encoder=lambda texts: model.encode_text(tokenizer(list(texts)).to(device)),
        logit_scale=float(model.logit_scale.detach().exp()),
        provenance=loaded_provenance(name, marker, f"unimedclip:{identifier} ({path})"),
        transform=unimedclip_transform(model.visual.image_size[0]),
        family="unimedclip",
    )


register_model(
    "unimedclip",
    f"unimedclip:{HUB_REPO}/{HUB_FILE}",
    description="UniMed-CLIP ViT-B/16 (QuickGELU) + BiomedBERT, trained on UniMed (5.3 M pairs); the "
    "authors' fork checkpoint mapped onto mainline open_clip",
    license="cc-by-nc-4.0",
)
