"""The model zoo: tiny stand-ins of each family, saved in the real layouts, through the real loaders, offline."""

from pathlib import Path

import numpy as np
import pytest
from conftest import go_offline, require  # noqa: E402

torch = require("torch")
require("open_clip")

from model_oracles import native_logits  # noqa: E402

from hf_robustmed.models import DEFAULT_TEMPLATES, build_prompts, create_model, list_models  # noqa: E402
from hf_robustmed.testing import (  # noqa: E402
    save_tiny_open_clip,
    save_tiny_transformers_clip,
    seed_hub_cache,
)

CLASSES = ["malignant", "normal, benign"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "open_clip": save_tiny_open_clip(root / "open_clip"),
        "transformers": save_tiny_transformers_clip(root / "tf"),
    }


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    return go_offline(monkeypatch, tmp_path / "hub")


def test_registry_names_the_papers_models():
    assert {"clip-vit-b16", "clip-rn50", "biomedclip", "pubmedclip"} <= set(list_models())


def test_prompts_follow_the_papers_template():
    assert build_prompts(CLASSES, "breastmnist") == [
        ["a medical image of a malignant belonging to breastmnist"],
        ["a medical image of a normal, benign belonging to breastmnist"],
    ]
    with pytest.raises(ValueError, match="class name"):
        build_prompts([], "x")


IMAGES = [np.zeros((40, 40, 3), np.uint8), np.full((28, 28), 200, np.uint8)]  # any size, grey or RGB


def _check(model, image_size=32):
    pixels = model.preprocess_arrays(IMAGES)
    assert pixels.shape == (2, 3, image_size, image_size)
    features = model.encode_images(pixels)
    weights = model.classifier(CLASSES, "breastmnist", DEFAULT_TEMPLATES + ("an image of {c}",))
    assert weights.shape[0] == 2
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(weights.norm(dim=-1), torch.ones(2))
    logits = model.logits(features, weights)
    torch.testing.assert_close(model.logits(model.encode_images(pixels), weights), logits)  # deterministic
    return logits


def _zoo_logits(model) -> torch.Tensor:
    """The zoo's logits of :data:`IMAGES` against one prompt per class (the paper's template)."""
    return model.logits(model.encode_images(model.preprocess_arrays(IMAGES)), model.classifier(CLASSES, "breastmnist"))


def _native(spec: str) -> torch.Tensor:
    """The family's own library's logits of :data:`IMAGES` against one prompt per class (no zoo code)."""
    return native_logits(spec, IMAGES, [row[0] for row in build_prompts(CLASSES, "breastmnist")])


def test_open_clip_local_dir(folders):
    model = create_model(f"local-dir:{folders['open_clip']}")
    _check(model)
    torch.testing.assert_close(_zoo_logits(model), _native(f"local-dir:{folders['open_clip']}"))


def test_open_clip_hf_hub_from_a_seeded_cache(folders, offline_hub):
    seed_hub_cache("microsoft/tiny-open-clip", folders["open_clip"], offline_hub)
    local = _check(create_model(f"local-dir:{folders['open_clip']}"))
    hub = _check(create_model("hf-hub:microsoft/tiny-open-clip"))
    torch.testing.assert_close(hub, local)  # same weights through both paths


def test_transformers_clip(folders):
    model = create_model(f"transformers:{folders['transformers']}")
    _check(model)
    torch.testing.assert_close(_zoo_logits(model), _native(f"transformers:{folders['transformers']}"))


def test_bad_specs_fail_clearly(folders, tmp_path, offline_hub):
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "open_clip_config.json").write_text((folders["open_clip"] / "open_clip_config.json").read_text())
    with pytest.raises(ValueError, match="no weights"):
        create_model(f"local-dir:{empty}")
    with pytest.raises(ValueError, match="no weights"):
        create_model("hf-hub:nobody/absent")
    with pytest.raises(ValueError, match="NAME/PRETRAINED"):
        create_model("open_clip:ViT-B-16")


def test_biomedclip_by_its_registry_name_from_a_seeded_cache(tmp_path, offline_hub):
    from hf_robustmed.testing import seed_tiny_biomedclip

    repo = seed_tiny_biomedclip(offline_hub, tmp_path)
    model = create_model("biomedclip")  # the real registry entry, hf-hub:microsoft/BiomedCLIP-…, offline
    assert type(model.module).__name__ == "CustomTextCLIP"
    _check(model)
    torch.testing.assert_close(_zoo_logits(model), _native(f"hf-hub:{repo}"))


def test_production_code_never_imports_the_test_scaffolding():
    """Every module of the library (the offline demo apart) and every model family import without pulling in
    ``hf_robustmed.testing``."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1] / "hf_robustmed"
    modules = sorted(
        ".".join(("hf_robustmed", *f.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        for f in root.rglob("*.py")
        if f.parent.name != "testing" and f.stem not in ("demo", "__main__")
    )
    assert "hf_robustmed.evaluation" in modules and "hf_robustmed.models.unimedclip" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from hf_robustmed.models.registry import load_families\n"
        "load_families()\n"
        "print(sorted(n for n in sys.modules if n.startswith('hf_robustmed.testing')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_family_comes_from_the_weights_not_the_name(folders, monkeypatch):
    from hf_robustmed.models import MODEL_SPECS, ModelSpec, family_of

    monkeypatch.setitem(MODEL_SPECS, "my-clip", ModelSpec("my-clip", "open_clip:RN50-quickgelu/openai", "d", "mit"))
    assert family_of("my-clip") == "clip" and family_of("clip-lookalike") is None  # a name alone says nothing
    assert family_of("open_clip:RN50-quickgelu/laion400m_e32") is None  # not OpenAI's weights
    spec = f"local-dir:{folders['open_clip']}"
    monkeypatch.setitem(MODEL_SPECS, "my-local-clip", ModelSpec("my-local-clip", spec, "d", "mit", family="clip"))
    assert family_of(spec) is None and create_model(spec).family is None
    assert family_of("my-local-clip") == "clip" and create_model("my-local-clip").family == "clip"
