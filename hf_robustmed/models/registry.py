"""The model registry: names → spec strings, the loaders of each spec scheme, and model families.

Spec schemes (open_clip's own ``hf-hub:`` and ``local-dir:`` prefixes, plus ours), each registered by its family
module with :func:`register_loader`:

* ``open_clip:NAME/PRETRAINED`` — an open_clip architecture and pretrained tag (``ViT-B-16-quickgelu/openai``);
* ``hf-hub:ORG/REPO`` — an open_clip model repo on the Hub (``open_clip_config.json`` + weights);
* ``local-dir:PATH`` — the same layout in a local folder;
* ``transformers:ID_OR_PATH`` — a transformers ``CLIPModel`` with its processor;
* ``medclip:FOLDER``, ``unimedclip:PATH_OR_URL_OR_HUB_FILE``, ``peft:ADAPTER`` (see their modules).

Families register themselves: importing a module of :data:`FAMILY_MODULES` (or one a third-party package declares
under the entry-point group :data:`ENTRY_POINT_GROUP`) runs its ``register_loader`` and ``register_model`` calls.
A model's *family* (``"clip"``, ``"biomedclip"``, ``"unimedclip"``, ``"medclip"`` or ``None``) is a property of
its weights, set by the loader on :attr:`ZeroShotModel.family` (an adapter inherits its base's); protocols switch
on it (:mod:`hf_robustmed.protocols`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from importlib.metadata import entry_points

from .base import ZeroShotModel

Loader = Callable[[str, str, str], ZeroShotModel]
FamilyRule = Callable[[str], "str | None"]

# The built-in family modules, in registration order (the one place a new built-in family is added).
FAMILY_MODULES = (
    "hf_robustmed.models.open_clip_family",
    "hf_robustmed.models.transformers_family",
    "hf_robustmed.models.medclip",
    "hf_robustmed.models.peft_family",
    "hf_robustmed.models.unimedclip",
)
# Other packages add families by declaring a module under this entry-point group.
ENTRY_POINT_GROUP = "hf_robustmed.model_families"


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: where its weights come from, and what it is.

    Attributes:
        name: The registry name.
        spec: The spec string it stands for (``scheme:identifier``).
        description: One line.
        license: The weights' licence.
        family: The model family (``None``: what the scheme's loader says, see :func:`family_of`).
    """

    name: str
    spec: str
    description: str
    license: str
    family: str | None = None


MODEL_SPECS: dict[str, ModelSpec] = {}
_LOADERS: dict[str, Loader] = {}
_FAMILY_RULES: dict[str, FamilyRule] = {}


def register_model(name: str, spec: str, *, description: str, license: str, family: str | None = None) -> None:
    """Registers ``name`` as an alias of ``spec``.

    Raises:
        ValueError: If ``name`` is already registered.
    """
    if name in MODEL_SPECS:
        raise ValueError(f"model {name!r} is already registered")
    MODEL_SPECS[name] = ModelSpec(name, spec, description, license, family)


def register_loader(scheme: str, family: str | FamilyRule | None = None) -> Callable[[Loader], Loader]:
    """Decorator registering ``fn(identifier, name, device) -> ZeroShotModel`` for specs ``scheme:identifier``.

    Args:
        scheme: The spec scheme.
        family: The family of every model of the scheme, or ``fn(identifier) -> family | None`` when it depends on
            the identifier, or ``None`` (unknown before loading; the loader sets ``ZeroShotModel.family``).
    """

    def decorator(fn: Loader) -> Loader:
        _LOADERS[scheme] = fn
        _FAMILY_RULES[scheme] = family if callable(family) else (lambda identifier: family)
        return fn

    return decorator


@cache
def load_families() -> None:
    """Imports every family module once (built-in and entry points), which registers their loaders and models."""
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()


def resolve_spec(name_or_spec: str) -> str:
    """The spec string of a registered name (a spec is returned as is)."""
    load_families()
    return MODEL_SPECS[name_or_spec].spec if name_or_spec in MODEL_SPECS else name_or_spec


def family_of(name_or_spec: str) -> str | None:
    """The model family of a registry name or spec, as known before loading (``None``: unknown or no family).

    A registered family wins; otherwise the rule its scheme's loader was registered with decides (for ``peft:``
    the family is only known once the adapter's base is loaded: use ``model.family``).
    """
    load_families()
    registered = MODEL_SPECS.get(name_or_spec)
    if registered is not None and registered.family is not None:
        return registered.family
    scheme, _, identifier = resolve_spec(name_or_spec).partition(":")
    rule = _FAMILY_RULES.get(scheme)
    return rule(identifier) if rule is not None else None


def list_models() -> list[str]:
    """Registered model names."""
    load_families()
    return list(MODEL_SPECS)


def create_model(name_or_spec: str, device: str = "cpu") -> ZeroShotModel:
    """Creates a zero-shot model from a registered name or a spec string (see the module docstring).

    The model's ``family`` is the loader's, unless the name is registered with a family of its own.

    Raises:
        ValueError: For an unknown name or scheme (the message lists the valid ones).
        ImportError: When the model family's optional dependency is missing (naming the pip extra).
    """
    spec = resolve_spec(name_or_spec)
    scheme, sep, identifier = spec.partition(":")
    if not sep or scheme not in _LOADERS:
        raise ValueError(
            f"unknown model {name_or_spec!r}: not a registered name ({', '.join(MODEL_SPECS)}) nor a spec "
            f"with a scheme among {', '.join(s + ':' for s in _LOADERS)}"
        )
    model = _LOADERS[scheme](identifier, name_or_spec, device)
    registered = MODEL_SPECS.get(name_or_spec)
    return replace(model, family=registered.family) if registered is not None and registered.family else model
