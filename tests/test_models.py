"""The model zoo: tiny stand-ins of each family, saved in the real layouts, through the real loaders, offline."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from conftest import go_offline  # noqa: E402

from hf_robustmed.models import DEFAULT_TEMPLATES, build_prompts, create_model, list_models  # noqa: E402
from hf_robustmed.models.standins import (  # noqa: E402
    save_tiny_open_clip,
    save_tiny_transformers_clip,
    seed_hub_cache,
)

CLASSES = ["malignant", "normal, benign"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"open_clip": save_tiny_open_clip(root / "open_clip"), "transformers": save_tiny_transformers_clip(root / "tf")}


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


def _check(model, image_size=32):
    images = [np.zeros((40, 40, 3), np.uint8), np.full((28, 28), 200, np.uint8)]  # any size, grey or RGB
    pixels = model.preprocess_arrays(images)
    assert pixels.shape == (2, 3, image_size, image_size)
    features = model.encode_images(pixels)
    weights = model.classifier(CLASSES, "breastmnist", DEFAULT_TEMPLATES + ("an image of {c}",))
    assert weights.shape[0] == 2
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(weights.norm(dim=-1), torch.ones(2))
    logits = model.logits(features, weights)
    torch.testing.assert_close(logits, model.logit_scale * features @ weights.T)
    torch.testing.assert_close(model.logits(model.encode_images(pixels), weights), logits)  # deterministic
    return logits


def test_open_clip_local_dir(folders):
    _check(create_model(f"local-dir:{folders['open_clip']}"))


def test_open_clip_hf_hub_from_a_seeded_cache(folders, offline_hub):
    seed_hub_cache("microsoft/tiny-open-clip", folders["open_clip"], offline_hub)
    local = _check(create_model(f"local-dir:{folders['open_clip']}"))
    hub = _check(create_model("hf-hub:microsoft/tiny-open-clip"))
    torch.testing.assert_close(hub, local)  # same weights through both paths


def test_transformers_clip(folders):
    _check(create_model(f"transformers:{folders['transformers']}"))


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
    from hf_robustmed.models.standins import seed_tiny_biomedclip

    seed_tiny_biomedclip(offline_hub, tmp_path)
    model = create_model("biomedclip")  # the real registry entry, hf-hub:microsoft/BiomedCLIP-…, offline
    assert type(model.module).__name__ == "CustomTextCLIP"
    _check(model)
