import importlib
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


def on_ci() -> bool:
    """Whether the suite runs on CI (``CI=true``, as CI services and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").lower() == "true"


def require(module: str) -> ModuleType:
    """Imports a dependency the tests need: skips the calling test (or module, at module level) when it cannot be
    imported locally, but fails under ``CI=true``, where every dependency of ``[dev]`` must be importable — a broken
    ``open_clip`` or ``peft`` import never turns part of the suite into silent skips on CI.

    Args:
        module: The module's import name (``"open_clip"``, ``"peft"``, ``"pydicom.data"`` …).

    Returns:
        The module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"{module} cannot be imported ({type(error).__name__}: {error})"
        if on_ci():
            pytest.fail(f"{message}: CI=true requires every test dependency (pip install -e '.[dev]')", pytrace=False)
        pytest.skip(f"{message}; install it with pip install -e '.[dev]'", allow_module_level=True)


def go_offline(patch: pytest.MonkeyPatch, cache: str | Path) -> Path:
    """The offline Hub kit (SPEC §8.5): ``HF_HUB_OFFLINE`` and the cache ``cache``, for huggingface_hub (already
    imported: its constants) and for subprocesses (the environment). Returns the cache."""
    import huggingface_hub.constants as constants

    patch.setattr(constants, "HF_HUB_OFFLINE", True)
    patch.setattr(constants, "HF_HUB_CACHE", str(cache))
    patch.setenv("HF_HUB_OFFLINE", "1")
    patch.setenv("HF_HUB_CACHE", str(cache))
    return Path(cache)


def seed_hub_families(patch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Offline Hub cache with the BiomedCLIP and UniMed-CLIP stand-ins under their real ids, plus a LoRA adapter
    over the BiomedCLIP stand-in (non-zero B, so it acts); returns the adapter folder."""
    from hf_robustmed.adaptation.lora import add_lora
    from hf_robustmed.models import create_model
    from hf_robustmed.testing import BIOMEDCLIP_REPO, seed_tiny_biomedclip, seed_tiny_unimedclip

    cache = go_offline(patch, tmp_path / "hub")
    seed_tiny_biomedclip(cache, tmp_path / "work")
    seed_tiny_unimedclip(cache, tmp_path / "work")
    lora = add_lora(
        create_model("biomedclip").module,
        BIOMEDCLIP_REPO,
        rank=2,
        alpha=2,
        dropout=0.0,
        target_modules=r"visual\.trunk\.blocks\.\d+\.attn\.qkv",
        init_lora_weights=False,
    )
    lora.save_pretrained(tmp_path / "adapter")
    return tmp_path / "adapter"


def textured_image(size: int | tuple[int, int] = 224, rgb: bool = True, seed: int = 0) -> np.ndarray:
    """A natural-looking test image: smooth gradients, edges, a bright patch and fine texture."""
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    yy, xx = yy / height, xx / width
    base = 0.5 + 0.25 * np.sin(6 * xx + 2 * yy) + 0.15 * np.cos(9 * yy)
    image = np.stack([base, np.roll(base, height // 10, 0), 0.6 * base + 0.2], -1)
    image += rng.normal(0, 0.05, image.shape)
    image[height // 3 : height // 2, width // 4 : width // 2] = 0.92
    image[2 * height // 3 :, : width // 5] = 0.1
    image = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return image if rgb else image[..., 0]


@pytest.fixture(scope="session")
def rgb224() -> np.ndarray:
    return textured_image(224, True)


@pytest.fixture(scope="session")
def grey224() -> np.ndarray:
    return textured_image(224, False)


@pytest.fixture
def fresh_accelerate_state():
    """accelerate keeps one process-wide state whose precision cannot change: reset it around the test."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
