"""UniMed-CLIP: a tiny stand-in in the fork's checkpoint layout, through the production loader, offline.

The mapping onto mainline open_clip is proven against an independent computation from the raw checkpoint
tensors: the fork's ViT forward re-implemented with torch.nn.functional, and its text path (BERT → class token of
the last hidden state → Linear → GELU → Linear) from a bare transformers ``BertModel``.
"""

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import go_offline, require  # noqa: E402

torch = require("torch")
require("open_clip")
require("transformers")

import torch.nn.functional as F  # noqa: E402

from hf_robustmed.models import create_model, list_models  # noqa: E402
from hf_robustmed.models.unimedclip import (  # noqa: E402
    HUB_FILE,
    HUB_REPO,
    SAFE_GLOBALS,
    infer_architecture,
)
from hf_robustmed.testing import seed_tiny_unimedclip  # noqa: E402

TEXTS = ["a medical image of a cnv belonging to oct", "normal"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A Hub cache seeded with the stand-in under the real repo ids; offline for the whole module."""
    root = tmp_path_factory.mktemp("unimedclip")
    with pytest.MonkeyPatch.context() as patch:
        go_offline(patch, root / "hub")
        checkpoint = Path(seed_tiny_unimedclip(root / "hub", root / "work"))
        yield SimpleNamespace(root=root, checkpoint=checkpoint, text_folder=root / "work" / "biomedbert")


@pytest.fixture(scope="module")
def model(hub):
    return create_model("unimedclip")  # the registry entry: unimedclip:razaimam45/RobustMedCLIP/checkpoints/…


def raw_state(path) -> dict:
    """The checkpoint's tensors, read without the production code (fork layout: state_dict, module.)."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return {key.removeprefix("module."): value for key, value in checkpoint["state_dict"].items()}


def fork_image_embedding(state: dict, pixels: torch.Tensor) -> torch.Tensor:
    """The fork's VisualTransformer forward, from the raw tensors (QuickGELU, class-token pooling)."""
    p = lambda name: state[f"visual.{name}"]  # noqa: E731
    width, patch = p("conv1.weight").shape[0], p("conv1.weight").shape[-1]
    norm = lambda x, name: F.layer_norm(x, (width,), p(f"{name}.weight"), p(f"{name}.bias"))  # noqa: E731
    x = F.conv2d(pixels, p("conv1.weight"), stride=patch).flatten(2).transpose(1, 2)
    x = torch.cat([p("class_embedding").expand(len(x), 1, width), x], 1) + p("positional_embedding")
    x = norm(x, "ln_pre")
    blocks = sorted({k.split(".")[3] for k in state if k.startswith("visual.transformer.resblocks.")}, key=int)
    for i in blocks:
        b = f"transformer.resblocks.{i}."
        h = norm(x, b + "ln_1").transpose(0, 1)
        h, _ = F.multi_head_attention_forward(
            h,
            h,
            h,
            width,
            width // 64,
            p(b + "attn.in_proj_weight"),
            p(b + "attn.in_proj_bias"),
            None,
            None,
            False,
            0.0,
            p(b + "attn.out_proj.weight"),
            p(b + "attn.out_proj.bias"),
            training=False,
            need_weights=False,
        )
        x = x + h.transpose(0, 1)
        h = F.linear(norm(x, b + "ln_2"), p(b + "mlp.c_fc.weight"), p(b + "mlp.c_fc.bias"))
        x = x + F.linear(h * torch.sigmoid(1.702 * h), p(b + "mlp.c_proj.weight"), p(b + "mlp.c_proj.bias"))
    return norm(x[:, 0], "ln_post") @ p("proj")


def fork_text_embedding(state: dict, text_folder: Path, texts: list[str]) -> torch.Tensor:
    """BERT (no pooler) → class token of the last hidden state → Linear → GELU → Linear, from the raw tensors."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    bert = BertModel(BertConfig.from_pretrained(text_folder), add_pooling_layer=False).eval()
    prefix = "text_encoder.transformer."
    bert.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    ids = AutoTokenizer.from_pretrained(text_folder)(
        texts, padding="max_length", max_length=256, truncation=True, return_tensors="pt"
    )["input_ids"]
    cls = bert(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state[:, 0]
    return F.linear(F.gelu(F.linear(cls, state["text_encoder.proj.0.weight"])), state["text_encoder.proj.2.weight"])


def test_registered_by_name():
    assert "unimedclip" in list_models()


def test_loads_offline_by_registry_name(model):
    assert type(model.module).__name__ == "CustomTextCLIP"
    pixels = model.preprocess_arrays([np.zeros((40, 40, 3), np.uint8), np.full((28, 28), 200, np.uint8)])
    assert pixels.shape == (2, 3, 224, 224)
    features, weights = model.encode_images(pixels), model.classifier(["malignant", "benign"], "breastmnist")
    assert features.shape == (2, 16) and weights.shape == (2, 16)
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(2))


def test_architecture_is_read_from_the_tensors(hub):
    arch = infer_architecture(raw_state(hub.checkpoint))
    assert (arch.embed_dim, arch.image_size, arch.patch_size, arch.width, arch.layers) == (16, 224, 32, 64, 2)


def test_image_embeddings_equal_the_forks_forward(hub, model):
    state = raw_state(hub.checkpoint)
    pixels = model.preprocess_arrays([np.random.default_rng(0).integers(0, 255, (50, 60, 3), np.uint8)] * 2)
    with torch.no_grad():
        expected = fork_image_embedding(state, pixels)
        torch.testing.assert_close(model.image_encoder(pixels), expected, rtol=1e-4, atol=1e-5)
    assert model.logit_scale == pytest.approx(float(state["logit_scale"].exp()))


def test_text_embeddings_equal_the_forks_text_path(hub, model):
    state = raw_state(hub.checkpoint)
    with torch.no_grad():
        expected = fork_text_embedding(state, hub.text_folder, TEXTS)
        torch.testing.assert_close(model.text_encoder(TEXTS), expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(expected[0], expected[1])  # the texts do reach the embedding


def test_preprocessing_is_the_forks(model):
    image = np.random.default_rng(1).integers(0, 255, (224, 224, 3), np.uint8)
    mean, std = torch.tensor([0.48145466, 0.4578275, 0.40821073]), torch.tensor([0.26862954, 0.26130258, 0.27577711])
    expected = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean[:, None, None]) / std[:, None, None]
    torch.testing.assert_close(model.preprocess_arrays([image])[0], expected)


def _save(state: dict, path: Path, **extra) -> str:
    torch.save({"epoch": 3, "state_dict": state, **extra}, path)
    return f"unimedclip:{path}"


def test_a_bare_or_allow_listed_state_dict_loads(hub, tmp_path):
    state = raw_state(hub.checkpoint)
    state["text_encoder.transformer.embeddings.position_ids"] = torch.arange(256)[None]  # transformers < 4.31
    model = create_model(_save(state, tmp_path / "plain.pt"))
    torch.testing.assert_close(model.module.state_dict()["text.proj.2.weight"], state["text_encoder.proj.2.weight"])


def test_wrong_or_missing_keys_fail_clearly(hub, tmp_path):
    state = raw_state(hub.checkpoint)
    state["text_encoder.projection.2.weight"] = state.pop("text_encoder.proj.2.weight")
    del state["visual.ln_post.bias"]
    with pytest.raises(
        ValueError,
        match=r"missing keys \['text\.proj\.2\.weight', 'visual\.ln_post\.bias'\]|"
        r"missing keys \['visual\.ln_post\.bias', 'text\.proj\.2\.weight'\]",
    ) as error:
        create_model(_save(state, tmp_path / "renamed.pt"))
    assert "unexpected keys ['text_encoder.projection.2.weight']" in str(error.value)


def test_shape_mismatch_fails_clearly(hub, tmp_path):
    state = raw_state(hub.checkpoint)
    state["text_encoder.proj.0.weight"] = state["text_encoder.proj.0.weight"][:, :-1]
    with pytest.raises(ValueError, match=r"shape mismatches \['text\.proj\.0\.weight"):
        create_model(_save(state, tmp_path / "shape.pt"))


def test_unsafe_pickles_and_absent_files_fail_clearly(hub, tmp_path):
    state = raw_state(hub.checkpoint)
    with pytest.raises(ValueError, match="weights_only"):
        create_model(_save(state, tmp_path / "args.pt", args=argparse.Namespace(lr=1)))
    with pytest.raises(ValueError, match="no state dict"):
        torch.save({"epoch": 1}, tmp_path / "empty.pt")
        create_model(f"unimedclip:{tmp_path / 'empty.pt'}")
    with pytest.raises(ValueError, match="neither on the Hub nor in the local cache"):
        create_model(f"unimedclip:{HUB_REPO}/checkpoints/unimedclip/absent.pt")
    with pytest.raises(ValueError, match="no such file"):
        create_model("unimedclip:missing.pt")
    assert HUB_FILE.endswith("unimed_clip_vit_b16.pt")
