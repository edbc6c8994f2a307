"""Where a loaded model's weights come from: ``"pretrained"`` or a ``"stand-in"`` (read from its files' marker).

Every stand-in written by :mod:`hf_robustmed.testing` carries a marker, the key :data:`STANDIN_KEY` in the config
it writes (``open_clip_config.json``, ``config.json``, ``medclip_config.json``, the top level of a UniMed-CLIP
checkpoint, the card data of an adapter trained on a stand-in base). The loaders read it with
:func:`loaded_provenance`: the model's ``provenance`` then says ``"stand-in"`` and a warning naming the model is
logged, so a stand-in seeded under a real repo id (the demo's ``demo_out/hub``) can never pass for the real model.
This module is production code (the loaders, the adapter card and the reproduction use it); the writers of
stand-ins live in :mod:`hf_robustmed.testing`, which production code never imports.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .registry import resolve_spec

logger = logging.getLogger(__name__)

STANDIN_KEY = "hf_robustmed_stand_in"
STANDIN = "stand-in"
PRETRAINED = "pretrained"
UNKNOWN = "unknown"


def standin_marker() -> dict[str, str]:
    """The value of :data:`STANDIN_KEY` written into every stand-in's config."""
    return {
        "weights": STANDIN,
        "written_by": "hf_robustmed.testing",
        "note": "tiny randomly initialised stand-in in a real model's layout; its outputs mean nothing",
    }


def is_standin(marker: Any) -> bool:
    """Whether ``marker`` (the value found under :data:`STANDIN_KEY`, or ``None``) marks a stand-in."""
    return isinstance(marker, Mapping) and marker.get("weights") == STANDIN


def json_marker(path: str | os.PathLike) -> Any:
    """The :data:`STANDIN_KEY` value of a JSON config file (``None`` when absent or unreadable as JSON)."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return config.get(STANDIN_KEY) if isinstance(config, dict) else None


def loaded_provenance(name: str, marker: Any, detail: str) -> dict[str, str]:
    """A loaded model's ``provenance``; logs a warning naming the model when ``marker`` marks a stand-in.

    Args:
        name: The model's name (registry name or spec).
        marker: What the model's files hold under :data:`STANDIN_KEY` (``None``: nothing).
        detail: Where the weights were read from (file, folder or repo).

    Returns:
        ``{"weights": "stand-in" | "pretrained", "detail": detail}``.
    """
    if is_standin(marker):
        logger.warning(
            "model %r: loaded STAND-IN weights from %s (a tiny randomly initialised model written by "
            "hf_robustmed.testing), not the real model; its outputs mean nothing",
            name,
            detail,
        )
        return {"weights": STANDIN, "detail": detail}
    return {"weights": PRETRAINED, "detail": detail}


def stored_provenance(name_or_spec: str) -> dict[str, str]:
    """The provenance of an open_clip model's files without loading it: read from its ``open_clip_config.json``
    in a folder (``local-dir:``) or in the local Hugging Face cache (``hf-hub:``; nothing is downloaded).

    Args:
        name_or_spec: A registry name or spec.

    Returns:
        ``{"weights": "stand-in" | "pretrained" | "unknown", "detail": ...}``; ``unknown`` when the config is
        neither on disk nor cached, or for other schemes.
    """
    spec = resolve_spec(name_or_spec)
    path = _local_open_clip_config(spec)
    if path is None or not path.is_file():
        return {"weights": UNKNOWN, "detail": f"{spec}: config not found locally"}
    return {"weights": STANDIN if is_standin(json_marker(path)) else PRETRAINED, "detail": f"{spec} ({path})"}


def _local_open_clip_config(spec: str) -> Path | None:
    """The ``open_clip_config.json`` of a ``local-dir:`` or cached ``hf-hub:`` spec (``None``: not local)."""
    scheme, _, identifier = spec.partition(":")
    if scheme == "local-dir":
        return Path(identifier) / "open_clip_config.json"
    if scheme == "hf-hub":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(identifier, "open_clip_config.json")
        return Path(cached) if isinstance(cached, str) else None
    return None
