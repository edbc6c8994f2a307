"""Optional dependencies: import one, or say which pip extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

# import name → the name pip knows it by, where they differ
_PIP_NAMES = {
    "open_clip": "open_clip_torch",
    "skimage": "scikit-image",
    "yaml": "PyYAML",
    "deflate": "deflate (libdeflate)",
}


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Imports ``module`` (dotted); if it is missing, raises an ImportError naming the pip extra that installs it.

    Args:
        module: What to import, e.g. ``"open_clip"`` or ``"matplotlib.figure"``.
        extra: The ``hf-robustmed`` extra that provides it (``models``, ``data``, ``viz`` …).
        purpose: What needs it, for the message (``"open_clip models"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs {_PIP_NAMES.get(package, package)}: pip install 'hf-robustmed[{extra}]'"
        ) from None
