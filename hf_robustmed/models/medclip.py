"""MedCLIP (Wang et al., EMNLP 2022; github.com/RyanWangZf/MedCLIP), re-implemented on current transformers/torchvision.

No dependency on the ``medclip`` package. The released weights are not on the Hub but in two zips on Google
Storage, each holding a ``pytorch_model.bin`` state dict; :func:`download_medclip` fetches one into a folder
and writes a ``medclip_config.json`` beside it. That folder is then loadable as the spec ``medclip:FOLDER``:

* ``medclip-vit``  → ``medclip:~/.cache/hf_robustmed/medclip-vit``  (fill it with ``download_medclip("vit")``);
* ``medclip-rn50`` → ``medclip:~/.cache/hf_robustmed/medclip-rn50`` (fill it with ``download_medclip("resnet")``).

The architecture, as in the release:

* image: Swin-Tiny (``microsoft/swin-tiny-patch4-window7-224``, its pooler output, 768) → ``projection_head``
  (768→512, no bias); or torchvision ResNet-50 whose ``fc`` is the projection (2048→512, no bias). A one-channel
  input is repeated to three channels;
* text: Bio_ClinicalBERT → mean over *all* tokens (padding included, as the original) of the average of hidden
  states 1, 2 and the last → ``projection_head`` (768→512, no bias);
* both embeddings L2-normalised; ``logit_scale`` clamped to [0, log 100] as MedCLIP's ``compute_logits`` does.

``medclip_config.json``::

    {"vision": "vit" | "resnet",
     "swin_config": {...SwinConfig kwargs...},          # vit only
     "resnet_layers": [3, 4, 6, 3],                      # resnet only (Bottleneck blocks per stage)
     "bert_config": {...BertConfig kwargs...},
     "proj_dim": 512, "image_size": 224,                 # optional, these defaults
     "tokenizer": "emilyalsentzer/Bio_ClinicalBERT"}     # a Hub id, an absolute path, or a sub-folder of FOLDER

The state dict is loaded strictly: every missing or unexpected key is an error, except the few of
:data:`IGNORABLE_UNEXPECTED` (buffers that older transformers versions serialised and current ones recompute).
Swin parameter names of the release (transformers 4.x: ``attention.self.query``, ``intermediate.dense`` …) are
renamed to the installed transformers' names when those differ.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_path
from .base import ZeroShotModel
from .preprocess import ImageTransform
from .provenance import STANDIN_KEY, loaded_provenance
from .registry import register_loader, register_model

IMG_MEAN = 0.5862785803043838
IMG_STD = 0.27950088968644304
LOGIT_SCALE_MAX = 4.6052  # log(100), MedCLIP's clamp
CONTEXT_LENGTH = 77
BERT_TYPE = "emilyalsentzer/Bio_ClinicalBERT"
VIT_TYPE = "microsoft/swin-tiny-patch4-window7-224"
CONFIG_NAME = "medclip_config.json"
WEIGHTS_NAMES = ("model.safetensors", "pytorch_model.bin")

URLS = {
    "vit": "https://storage.googleapis.com/pytrial/medclip-vit-pretrained.zip",
    "resnet": "https://storage.googleapis.com/pytrial/medclip-pretrained.zip",
}
DEFAULT_FOLDERS = {"vit": "~/.cache/hf_robustmed/medclip-vit", "resnet": "~/.cache/hf_robustmed/medclip-rn50"}

# The real architectures' configs, written explicitly (SwinConfig/BertConfig.from_pretrained would need the Hub).
SWIN_TINY_CONFIG: dict[str, Any] = {
    "image_size": 224,
    "patch_size": 4,
    "num_channels": 3,
    "embed_dim": 96,
    "depths": [2, 2, 6, 2],
    "num_heads": [3, 6, 12, 24],
    "window_size": 7,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "hidden_act": "gelu",
    "use_absolute_embeddings": False,
    "layer_norm_eps": 1e-5,
    "drop_path_rate": 0.1,
}
BIO_CLINICALBERT_CONFIG: dict[str, Any] = {  # bert-base-cased
    "vocab_size": 28996,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}

# Keys a release may hold that the installed modules do not, with why they are safe to drop.
IGNORABLE_UNEXPECTED: dict[str, str] = {
    r"^text_model\.model\.embeddings\.(position_ids|token_type_ids)$": (
        "BERT index buffers serialised by transformers < 4.31, recomputed now"
    ),
    r"^vision_model\.model\.encoder\.layers\.\d+\.blocks\.\d+\.attention\.self\.relative_position_index$": (
        "Swin index buffer serialised by transformers 4.x, recomputed now (checked equal)"
    ),
}

# Swin block parameters: the release's (transformers 4.x) suffix → the current one.
SWIN_RENAMES = (
    ("attention.self.query.", "attention.q_proj."),
    ("attention.self.key.", "attention.k_proj."),
    ("attention.self.value.", "attention.v_proj."),
    ("attention.output.dense.", "attention.o_proj."),
    ("attention.self.relative_position_bias_table", "attention.relative_position_bias.relative_position_bias_table"),
    ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."),
)
_SWIN_BLOCK = re.compile(r"^(vision_model\.model\.encoder\.layers\.\d+\.blocks\.\d+\.)(.*)$")


def rename_swin(key: str, renames: tuple[tuple[str, str], ...]) -> str:
    """``key`` with the first matching Swin block suffix of ``renames`` (``(old, new)`` pairs) replaced."""
    match = _SWIN_BLOCK.match(key)
    if match:
        prefix, rest = match.groups()
        for old, new in renames:
            if rest.startswith(old):
                return prefix + new + rest[len(old) :]
    return key


# --------------------------------------------------------------------------------------------------- the model


class MedCLIPVisionSwin(nn.Module):
    """Swin (``SwinModel``) pooler output → ``projection_head``."""

    def __init__(self, swin_config, proj_dim: int = 512):
        super().__init__()
        from transformers import SwinModel

        self.model = SwinModel(swin_config, add_pooling_layer=True)
        self.projection_head = nn.Linear(self.model.num_features, proj_dim, bias=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.shape[1] == 1:
            pixel_values = pixel_values.repeat((1, 3, 1, 1))
        return self.projection_head(self.model(pixel_values=pixel_values).pooler_output)


class MedCLIPVisionResNet(nn.Module):
    """torchvision ResNet (Bottleneck blocks) whose ``fc`` is the projection (no bias)."""

    def __init__(self, layers=(3, 4, 6, 3), proj_dim: int = 512):
        super().__init__()
        from torchvision.models.resnet import Bottleneck, ResNet

        self.model = ResNet(Bottleneck, list(layers))
        self.model.fc = nn.Linear(self.model.fc.in_features, proj_dim, bias=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.shape[1] == 1:
            pixel_values = pixel_values.repeat((1, 3, 1, 1))
        return self.model(pixel_values)


class MedCLIPText(nn.Module):
    """BERT → mean over all tokens of (hidden_states[1] + hidden_states[2] + hidden_states[-1]) / 3 → projection."""

    def __init__(self, bert_config, proj_dim: int = 512, add_pooling_layer: bool = True):
        super().__init__()
        from transformers import BertModel

        if bert_config.num_hidden_layers < 2:
            raise ValueError("MedCLIP's text pooling uses hidden states 1 and 2: the BERT needs at least 2 layers")
        # The release's BERT came from AutoModel.from_pretrained, which keeps the pooler (unused here).
        self.model = BertModel(bert_config, add_pooling_layer=add_pooling_layer)
        self.projection_head = nn.Linear(bert_config.hidden_size, proj_dim, bias=False)

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The unprojected embedding."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
        return ((hidden[1] + hidden[2] + hidden[-1]) / 3).mean(1)  # padding included, as the original

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.projection_head(self.pool(input_ids, attention_mask))


def _config(cls, config):
    return config if isinstance(config, cls) else cls(**dict(config))


class MedCLIPModel(nn.Module):
    """MedCLIP with the release's module names (``vision_model``, ``text_model``, ``logit_scale``).

    Args:
        vision: ``"vit"`` (Swin) or ``"resnet"`` (ResNet-50 family).
        swin_config: ``SwinConfig`` or its kwargs (``vit`` only).
        bert_config: ``BertConfig`` or its kwargs.
        resnet_layers: Bottleneck blocks per stage (``resnet`` only; ResNet-50 by default).
        proj_dim: Embedding dimension.
        text_pooler: Whether the BERT has its (unused) pooler, as the release does.
    """

    def __init__(
        self,
        vision: str,
        swin_config=None,
        bert_config=None,
        *,
        resnet_layers=(3, 4, 6, 3),
        proj_dim: int = 512,
        text_pooler: bool = True,
        logit_scale_init_value: float = 0.07,
    ):
        super().__init__()
        from transformers import BertConfig, SwinConfig

        if vision == "vit":
            self.vision_model = MedCLIPVisionSwin(_config(SwinConfig, swin_config or SWIN_TINY_CONFIG), proj_dim)
        elif vision == "resnet":
            self.vision_model = MedCLIPVisionResNet(resnet_layers, proj_dim)
        else:
            raise ValueError(f"MedCLIP vision must be 'vit' or 'resnet', not {vision!r}")
        self.vision = vision
        self.text_model = MedCLIPText(
            _config(BertConfig, bert_config or BIO_CLINICALBERT_CONFIG), proj_dim, text_pooler
        )
        self.logit_scale = nn.Parameter(torch.log(torch.tensor(1 / logit_scale_init_value)))

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.vision_model(pixel_values), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return nn.functional.normalize(self.text_model(input_ids, attention_mask), dim=-1)

    def clamp_logit_scale(self) -> float:
        """Clamps ``logit_scale`` to [0, log 100] in place (as MedCLIP's ``compute_logits``); returns exp of it."""
        with torch.no_grad():
            self.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
        return float(self.logit_scale.detach().exp())

    def load_release_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Loads a release state dict strictly (see the module docstring for what is renamed and ignored).

        Raises:
            ValueError: Naming every missing and unexpected key, or a shape mismatch.
        """
        expected = self.state_dict()
        buffers = dict(self.named_buffers())
        converted: dict[str, torch.Tensor] = {}
        unexpected, ignored = [], []
        for key, value in state_dict.items():
            if key not in expected:
                renamed = rename_swin(key, SWIN_RENAMES)
                if renamed in expected:
                    key = renamed
            if key in expected:
                converted[key] = value
            elif any(re.match(pattern, key) for pattern in IGNORABLE_UNEXPECTED):
                ignored.append(key)
                self._check_index_buffer(key, value, buffers)
            else:
                unexpected.append(key)
        missing = [key for key in expected if key not in converted]
        if missing or unexpected:
            raise ValueError(
                "MedCLIP state dict does not match the architecture: "
                f"missing keys {missing or 'none'}; unexpected keys {unexpected or 'none'}"
            )
        try:
            self.load_state_dict(converted, strict=True)
        except RuntimeError as error:
            raise ValueError(f"MedCLIP state dict does not match the architecture: {error}") from None

    @staticmethod
    def _check_index_buffer(key: str, value: torch.Tensor, buffers: dict[str, torch.Tensor]) -> None:
        if not key.endswith("relative_position_index"):
            return
        current = buffers.get(key.replace("attention.self.", "attention.relative_position_bias."))
        if current is not None and not torch.equal(value.reshape(-1).to(current), current.reshape(-1)):
            raise ValueError(f"{key} differs from the Swin index the installed transformers computes")


# --------------------------------------------------------------------------------------------------- loading


def _read_config(folder: Path) -> dict[str, Any]:
    return json.loads((folder / CONFIG_NAME).read_text())


def build_model(config: Mapping[str, Any]) -> MedCLIPModel:
    """A randomly initialised :class:`MedCLIPModel` from a ``medclip_config.json`` dict."""
    return MedCLIPModel(
        config["vision"],
        config.get("swin_config"),
        config.get("bert_config"),
        resnet_layers=tuple(config.get("resnet_layers", (3, 4, 6, 3))),
        proj_dim=int(config.get("proj_dim", 512)),
        text_pooler=bool(config.get("text_pooler", True)),
    )


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _image_size(config: Mapping[str, Any]) -> int:
    if "image_size" in config:
        return int(config["image_size"])
    if config["vision"] == "vit":
        size = (config.get("swin_config") or SWIN_TINY_CONFIG).get("image_size", 224)
        return int(size if isinstance(size, int) else size[0])
    return 224


def medclip_transform(image_size: int = 224) -> ImageTransform:
    """MedCLIP's native preprocessing as data (``MedCLIPFeatureExtractor`` with ``do_pad_square=True``).

    The original (``medclip/dataset.py``): the image is pasted on a black ``L`` canvas of side
    ``max(224, w, h)`` at ``(int((side - w) / 2), int((side - h) / 2))`` (``pad_img``; pasting converts RGB to
    ``L``), resized to ``224 × 224`` with PIL bicubic, centre-cropped to 224 (a no-op), scaled to [0, 1] by
    multiplying with 1/255 and normalised with MedCLIP's mean/std in float32 (transformers 4.24's
    ``ImageFeatureExtractionMixin``); the vision model repeats the one channel to three. Here 224 is
    ``image_size``.
    """
    return ImageTransform(
        size=image_size,
        resize_mode="pad_square",
        interpolation="bicubic",
        rescale="multiply",
        mean=(IMG_MEAN,),
        std=(IMG_STD,),
        grey=True,
    )


def medclip_preprocess(image_size: int = 224):
    """MedCLIP's native preprocessing of one PIL image (:func:`medclip_transform` with Pillow), ``3×S×S``."""
    return medclip_transform(image_size).to_pil()


def _resolve_tokenizer(folder: Path, tokenizer: str) -> str:
    local = folder / tokenizer
    return str(local) if not os.path.isabs(tokenizer) and local.is_dir() else tokenizer


def _missing_weights_message(folder: Path, name: str) -> str:
    variant = "resnet" if "rn50" in name or "resnet" in str(folder) or "rn50" in str(folder) else "vit"
    return (
        f"no MedCLIP weights in {folder} (need {CONFIG_NAME} and one of {', '.join(WEIGHTS_NAMES)}): download "
        f'them first with: python -c "from hf_robustmed.models.medclip import download_medclip; '
        f"download_medclip('{variant}', '{folder}')\""
    )


@register_loader("medclip", family="medclip")
def load_medclip(identifier: str, name: str, device: str) -> ZeroShotModel:
    """``medclip:FOLDER``: a folder with ``medclip_config.json`` and ``pytorch_model.bin`` / ``model.safetensors``.

    Raises:
        ValueError: If the folder lacks the config or weights (naming :func:`download_medclip`), or the state dict
            does not match the architecture.
    """
    from transformers import AutoTokenizer

    folder = Path(os.path.expanduser(identifier))
    weights = next((folder / f for f in WEIGHTS_NAMES if (folder / f).is_file()), None)
    if weights is None or not (folder / CONFIG_NAME).is_file():
        raise ValueError(_missing_weights_message(folder, name))
    config = _read_config(folder)
    model = build_model(config)
    model.load_release_state_dict(_load_weights(weights))
    logit_scale = model.clamp_logit_scale()
    model = model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(_resolve_tokenizer(folder, config.get("tokenizer", BERT_TYPE)))

    def encode_text(texts: list[str]) -> torch.Tensor:
        inputs = tokenizer(list(texts), padding=True, truncation=True, max_length=CONTEXT_LENGTH, return_tensors="pt")
        return model.encode_text(inputs["input_ids"].to(device), inputs["attention_mask"].to(device))

    return ZeroShotModel(
        name=name,
        module=model,
        preprocess=medclip_preprocess(_image_size(config)),
        transform=medclip_transform(_image_size(config)),
        image_encoder=lambda pixels: model.encode_image(pixels.to(device)),
        text_encoder=encode_text,
        logit_scale=logit_scale,
        provenance=loaded_provenance(name, config.get(STANDIN_KEY), f"medclip:{folder} ({weights.name})"),
        family="medclip",
    )


def write_config(folder: Path, config: Mapping[str, Any]) -> None:
    """Writes ``folder/medclip_config.json`` atomically."""
    with atomic_path(folder / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps(config, indent=1))


def release_config(variant: str) -> dict[str, Any]:
    """The ``medclip_config.json`` of a release (``"vit"`` or ``"resnet"``)."""
    config: dict[str, Any] = {
        "vision": variant,
        "bert_config": dict(BIO_CLINICALBERT_CONFIG),
        "proj_dim": 512,
        "image_size": 224,
        "tokenizer": BERT_TYPE,
    }
    if variant == "vit":
        config["swin_config"] = dict(SWIN_TINY_CONFIG)
    else:
        config["resnet_layers"] = [3, 4, 6, 3]
    return config


def download_medclip(variant: str = "vit", folder: str | os.PathLike | None = None) -> Path:
    """Downloads a MedCLIP release (``"vit"`` or ``"resnet"``/``"rn50"``) into ``folder`` and writes its config.

    ``folder`` defaults to the one the registry names ``medclip-vit`` / ``medclip-rn50`` load from. The zip is
    downloaded atomically, its ``pytorch_model.bin`` extracted atomically, and the zip removed. The tokenizer
    (Bio_ClinicalBERT) comes from the Hub at load time.
    """
    from ..download import download

    variant = {"rn50": "resnet", "resnet50": "resnet"}.get(variant, variant)
    if variant not in URLS:
        raise ValueError(f"MedCLIP variant must be 'vit' or 'resnet', not {variant!r}")
    folder = Path(os.path.expanduser(folder or DEFAULT_FOLDERS[variant]))
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "pytorch_model.bin"
    if not weights.is_file():
        archive = download(URLS[variant], folder / Path(URLS[variant]).name)
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.namelist() if Path(m).name == "pytorch_model.bin"]
            if len(members) != 1:
                raise ValueError(f"{archive} should hold one pytorch_model.bin, found {members}")
            with zipped.open(members[0]) as source, atomic_path(weights) as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        archive.unlink()
    write_config(folder, release_config(variant))
    return folder


register_model(
    "medclip-vit",
    f"medclip:{DEFAULT_FOLDERS['vit']}",
    description="MedCLIP ViT (Swin-Tiny + Bio_ClinicalBERT) on MIMIC-CXR/CheXpert; weights via download_medclip('vit')",
    license="unknown (see RyanWangZf/MedCLIP)",
)
register_model(
    "medclip-rn50",
    f"medclip:{DEFAULT_FOLDERS['resnet']}",
    description="MedCLIP ResNet-50 + Bio_ClinicalBERT on MIMIC-CXR/CheXpert; weights via download_medclip('resnet')",
    license="unknown (see RyanWangZf/MedCLIP)",
)
