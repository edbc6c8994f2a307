"""Zero-shot evaluation protocols: ``standard`` (ours) and ``rmc`` (the original RobustMedCLIP code's).

A protocol is data — a frozen :class:`Protocol` of switches (SPEC §5.2) — applied to a model by
:func:`apply_protocol`. ``standard`` changes nothing: each model's own preprocessing, class names in the data's
label order, L2-normalised text features, ``logit_scale · cos``. ``rmc`` reproduces the evaluation code of
``BioMedIA-MBZUAI/RobustMedCLIP`` (``evaluate.py``, ``models.py``, ``dataset.py``, ``cls_to_names.py``) with its
known defects (SPEC §11), for comparison with the paper's numbers:

* every model gets Resize(224, bicubic) → CenterCrop(224) → ToTensor → Normalize(OpenAI mean/std); CLIP models
  are normalised a second time, as the original wrapper did on top of the loader (D3, HEAD behaviour);
* BiomedCLIP and UniMed-CLIP class text features are not L2-normalised (D2); image features are;
* scores are the softmax of raw cosines, without the logit scale (D6);
* class prompts follow the original ``cls_to_names`` lists, whose order differs from the data's label order for
  pbc, fundus, mammo_calc, mammo_mass and oct: the prompt of row *i* is paired with label *i* (D4);
* one prompt per class, the original eval template, all class prompts encoded in one batch (MedCLIP's text
  embedding depends on the padding length, which the original set by batching the prompts).

One known defect of the original evaluation is recorded but **not** reproduced (:attr:`Protocol.not_reproduced`):
D15, the original never switches MedCLIP and RobustMedCLIP to eval mode, so dropout was active (and BatchNorm used
batch statistics in MedCLIP-ResNet) and its numbers for them are stochastic and batch-dependent; here every model
is evaluated in eval mode under every protocol. ``protocol.json`` says so.

Which model a switch applies to is decided by its *family*, a property of the loaded model
(:attr:`~hf_robustmed.models.ZeroShotModel.family`, set by its loader from the weights, whatever the model's name:
a renamed BiomedCLIP is ``biomedclip``, a ``peft:`` adapter over BiomedCLIP is ``biomedclip-lora``). A model of no
listed family is treated as the original treated CLIP-like models apart from the double normalisation
(normalised text, single normalisation). That includes ``biomedclip-lora``: the original's RobustMedCLIP wrapper
normalised its text features (``BiomedCLIPViT_LoRA.text_features``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from .models.preprocess import OPENAI_MEAN, OPENAI_STD, ImageTransform
from .models.prompts import PAPER_TEMPLATE, build_prompts
from .models.registry import family_of

__all__ = [
    "OPENAI_MEAN",
    "OPENAI_STD",
    "ORIGINAL_CLASS_NAMES",
    "PROTOCOLS",
    "Protocol",
    "ProtocolModel",
    "apply_protocol",
    "family_of",
    "get_protocol",
    "protocol_image_transform",
    "protocol_transform",
]

# The prompt class lists of the original code (cls_to_names.py), for the paper's 12 datasets. For MedMNIST and
# for aml and pneumonia they follow the data's label order; for the other five MedIMeta datasets they do not.
ORIGINAL_CLASS_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "aml": (
            "BAS Basophil",
            "EBO Erythroblast",
            "EOS Eosinophil",
            "KSC Smudge cell",
            "LYA Lymphocyte (atypical)",
            "LYT Lymphocyte (typical)",
            "MMZ Metamyelocyte",
            "MOB Monoblast",
            "MON Monocyte",
            "MYB Myelocyte",
            "MYO Myeloblast",
            "NGB Neutrophil (band)",
            "NGS Neutrophil (segmented)",
            "PMB Promyelocyte (bilobled)",
            "PMO Promyelocyte",
        ),
        "pbc": (
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocyte",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
        "fundus": ("abnormal", "normal"),
        "mammo_calc": ("malignant", "benign"),
        "mammo_mass": ("malignant", "benign"),
        "oct": ("CNV", "NORMAL", "DME", "DRUSEN"),
        "pneumonia": ("NORMAL", "BACTERIA", "VIRUS"),
        "bloodmnist": (
            "basophil",
            "eosinophil",
            "erythroblast",
            "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
            "lymphocyte",
            "monocyte",
            "neutrophil",
            "platelet",
        ),
        "retinamnist": ("0", "1", "2", "3", "4"),
        "breastmnist": ("malignant", "normal, benign"),
        "octmnist": ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
        "pneumoniamnist": ("normal", "pneumonia"),
    }
)


@dataclass(frozen=True)
class Protocol:
    """The switches of a zero-shot protocol.

    Attributes:
        name: ``standard`` or ``rmc``.
        description: One line, recorded with every result.
        image_size: ``None`` keeps each model's own preprocessing; otherwise every model gets Resize (bicubic) →
            CenterCrop at this size → ToTensor → Normalize(``mean``, ``std``).
        mean: Normalisation mean (with ``image_size``).
        std: Normalisation std (with ``image_size``).
        double_normalised: Families normalised twice (D3).
        raw_text: Families whose class text features are not L2-normalised (D2).
        logit_scale: Whether cosines are multiplied by the model's logit scale (``False``: raw cosine, D6).
        class_names: Dataset → prompt class order; other datasets use the data's label order (D4).
        templates: The only prompt templates allowed (``None``: any).
        defects: The SPEC §11 defects the protocol reproduces.
        not_reproduced: SPEC §11 defects of the original that the protocol knowingly does not reproduce, with what
            the original did and what is done instead.
    """

    name: str
    description: str
    image_size: int | None = None
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD
    double_normalised: frozenset[str] = frozenset()
    raw_text: frozenset[str] = frozenset()
    logit_scale: bool = True
    class_names: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    templates: tuple[str, ...] | None = None
    defects: tuple[str, ...] = ()
    not_reproduced: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def check_templates(self, templates: Sequence[str]) -> tuple[str, ...]:
        """``templates`` as a tuple, if the protocol allows them.

        Raises:
            ValueError: If the protocol fixes its templates and ``templates`` differ.
        """
        if self.templates is not None and tuple(templates) != self.templates:
            raise ValueError(
                f"protocol {self.name!r} uses the original template only ({list(self.templates)}), "
                f"got {list(templates)}"
            )
        return tuple(templates)

    def class_names_for(self, dataset: str, data_names: Sequence[str]) -> list[str]:
        """The class names of the prompts, row *i* scored against label *i*.

        Raises:
            ValueError: If the protocol's list for ``dataset`` is not a reordering of the data's names.
        """
        names = self.class_names.get(dataset)
        if names is None:
            return list(data_names)
        if sorted(names) != sorted(data_names):
            raise ValueError(
                f"protocol {self.name!r}: its class names of {dataset!r} {list(names)} are not the "
                f"data's {list(data_names)} reordered"
            )
        return list(names)

    def record(self) -> dict:
        """The protocol as JSON-able data (for summaries)."""
        return {
            "name": self.name,
            "description": self.description,
            "defects": list(self.defects),
            "preprocessing": "model's own"
            if self.image_size is None
            else f"Resize({self.image_size}, bicubic) + CenterCrop({self.image_size}) + "
            f"Normalize(mean={list(self.mean)}, std={list(self.std)})",
            "double_normalised": sorted(self.double_normalised),
            "unnormalised_text": sorted(self.raw_text),
            "logit_scale": self.logit_scale,
            "templates": None if self.templates is None else list(self.templates),
            "class_name_lists": sorted(self.class_names),
            "defects_not_reproduced": dict(self.not_reproduced),
            "eval_mode": "every model in eval mode (dropout off, BatchNorm running statistics)",
        }


D15 = (
    "the original evaluation (MedclipZeroShot, RobustMedClip.load, evaluate.py) never calls .eval() on "
    "MedCLIP and RobustMedCLIP: dropout stays active and MedCLIP-ResNet's BatchNorm uses batch statistics, so "
    "the original numbers for them are stochastic and batch-dependent. Not reproduced: every model is "
    "evaluated in eval mode (deterministic)"
)

PROTOCOLS: Mapping[str, Protocol] = MappingProxyType(
    {
        "standard": Protocol(
            "standard",
            "each model's own preprocessing, class names in the data's label order, L2-normalised text "
            "features, logit_scale · cosine (SPEC §5.2)",
        ),
        "rmc": Protocol(
            "rmc",
            "paper-faithful: the original RobustMedCLIP evaluation code with its defects D2, D3, D4, D6 "
            "(SPEC §5.1, §11); not comparable with 'standard' results. Known defect NOT reproduced: D15, the "
            "original never switched MedCLIP and RobustMedCLIP to eval mode (dropout active, BatchNorm batch "
            "statistics in MedCLIP-ResNet), so its numbers for them are stochastic; here every model runs in eval mode",
            image_size=224,
            double_normalised=frozenset({"clip"}),
            raw_text=frozenset({"biomedclip", "unimedclip"}),
            logit_scale=False,
            class_names=ORIGINAL_CLASS_NAMES,
            templates=(PAPER_TEMPLATE,),
            defects=("D2", "D3", "D4", "D6"),
            not_reproduced=MappingProxyType({"D15": D15}),
        ),
    }
)


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name``.

    Raises:
        ValueError: For an unknown name (listing the valid ones).
    """
    if isinstance(name, Protocol):
        return name
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocol_transform(protocol: Protocol, family: str | None):
    """The protocol's image transform for a model family (``None``: keep the model's own)."""
    if protocol.image_size is None:
        return None
    from torchvision import transforms

    normalise = transforms.Normalize(protocol.mean, protocol.std)
    steps = [
        transforms.Resize(protocol.image_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(protocol.image_size),
        transforms.ToTensor(),
        normalise,
    ]
    if family in protocol.double_normalised:
        steps.append(normalise)
    return transforms.Compose(steps)


def protocol_image_transform(protocol: Protocol, family: str | None) -> ImageTransform | None:
    """:func:`protocol_transform` as data, for batched preprocessing on uint8 tensors (``None``: the model's own).

    Equal to the PIL transform bit for bit (Pillow's resize reproduced exactly, torchvision's crop offsets).
    """
    if protocol.image_size is None:
        return None
    return ImageTransform(
        size=protocol.image_size,
        resize_mode="shortest",
        interpolation="bicubic",
        mean=protocol.mean,
        std=protocol.std,
        normalise_times=2 if family in protocol.double_normalised else 1,
    )


class ProtocolModel:
    """A zero-shot model seen through a protocol's switches (the interface the evaluator uses).

    Args:
        base: The model (a :class:`~hf_robustmed.models.ZeroShotModel`).
        protocol: The protocol.
        family: The model's family (``ZeroShotModel.family``).
    """

    def __init__(self, base, protocol: Protocol, family: str | None):
        self.base, self.protocol, self.family = base, protocol, family
        self.name = base.name
        self.normalise_text = family not in protocol.raw_text
        self.scale = base.logit_scale if protocol.logit_scale else 1.0
        self.preprocess = protocol_transform(protocol, family) or base.preprocess
        self.transform = protocol_image_transform(protocol, family) or base.transform

    def preprocess_arrays(self, images: Sequence[np.ndarray]):
        """A batch tensor from uint8 arrays (grey replicated to RGB), with the protocol's transform."""
        import torch
        from PIL import Image

        return torch.stack([self.preprocess(Image.fromarray(image).convert("RGB")) for image in images])

    def preprocess_batch(self, images):
        """A float ``N×3×S×S`` batch from uint8 ``N×C×H×W`` (or a sequence of ``C×H×W``) on the images' device:
        the protocol's transform (or the model's own, when the protocol keeps it) run batched; the model's
        per-image fallback when it has no batched transform."""
        if self.transform is None:
            return self.base.preprocess_batch(images)
        return self.transform(images)

    def encode_images(self, pixels):
        """L2-normalised image embeddings (every protocol normalises them)."""
        return self.base.encode_images(pixels)

    def classifier(self, class_names: Sequence[str], dataset: str, templates: Sequence[str]):
        """``C × D`` class weights: per template, the class prompts encoded in one batch; normalised unless the
        family's text features stay raw under this protocol; averaged over templates."""
        import torch

        prompts = build_prompts(class_names, dataset, templates)
        with torch.no_grad():
            weights = torch.stack([self._text([row[t] for row in prompts]) for t in range(len(templates))]).mean(0)
        return torch.nn.functional.normalize(weights, dim=-1) if self.normalise_text else weights

    def _text(self, texts: list[str]):
        import torch

        features = self.base.text_encoder(texts).float()
        return torch.nn.functional.normalize(features, dim=-1) if self.normalise_text else features

    def logits(self, image_features, classifier):
        """``scale · image_features · classifierᵀ`` (scale 1 without the logit scale)."""
        return self.scale * image_features @ classifier.T


def apply_protocol(model, protocol: str | Protocol, family: str | None = None):
    """``model`` under ``protocol``: unchanged for ``standard``, a :class:`ProtocolModel` otherwise.

    Args:
        model: A :class:`~hf_robustmed.models.ZeroShotModel`.
        protocol: A protocol or its name.
        family: Overrides the model's own family (``model.family``, set by its loader), e.g. for a model built
            by hand.
    """
    protocol = get_protocol(protocol)
    if protocol == PROTOCOLS["standard"]:
        return model
    return ProtocolModel(model, protocol, family if family is not None else getattr(model, "family", None))
