"""MedCLIP: tiny stand-ins saved in the release layout (pytorch_model.bin), through the real ``medclip:`` loader."""

import json
import math

import numpy as np
import pytest
from conftest import require  # noqa: E402

torch = require("torch")
require("transformers")
require("torchvision")

from hf_robustmed.models import (  # noqa: E402
    create_model,
    list_models,
    medclip,
)
from hf_robustmed.testing import save_tiny_medclip  # noqa: E402

CLASSES = ["pneumonia", "no finding"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("medclip")
    return {vision: save_tiny_medclip(root / vision, vision) for vision in ("vit", "resnet")}


def test_release_layout(folders):
    vit = torch.load(folders["vit"] / "pytorch_model.bin", map_location="cpu", weights_only=True)
    assert "vision_model.projection_head.weight" in vit and "text_model.projection_head.weight" in vit
    assert "vision_model.model.encoder.layers.0.blocks.0.attention.self.query.weight" in vit  # transformers 4.x names
    assert "vision_model.model.encoder.layers.0.blocks.0.intermediate.dense.weight" in vit
    assert "text_model.model.embeddings.position_ids" in vit and "logit_scale" in vit
    resnet = torch.load(folders["resnet"] / "pytorch_model.bin", map_location="cpu", weights_only=True)
    assert "vision_model.model.fc.weight" in resnet and "vision_model.model.layer4.0.conv3.weight" in resnet
    assert "vision_model.projection_head.weight" not in resnet and "vision_model.model.fc.bias" not in resnet


@pytest.mark.parametrize("vision", ["vit", "resnet"])
def test_loads_and_embeds(folders, vision):
    model = create_model(f"medclip:{folders[vision]}")
    assert isinstance(model.module, medclip.MedCLIPModel) and model.module.vision == vision
    pixels = model.preprocess_arrays([np.zeros((40, 50, 3), np.uint8), np.full((28, 28), 200, np.uint8)])
    assert pixels.shape == (2, 3, 32, 32)
    expected = torch.full((3, 32, 32), -medclip.IMG_MEAN / medclip.IMG_STD)  # black canvas of side max(32, 28)
    expected[:, 2:30, 2:30] = (200 / 255 - medclip.IMG_MEAN) / medclip.IMG_STD  # the image pasted centred
    torch.testing.assert_close(pixels[1], expected)
    assert torch.equal(
        model.preprocess_batch(
            [torch.zeros(3, 40, 50, dtype=torch.uint8), torch.full((1, 28, 28), 200, dtype=torch.uint8)]
        ),
        pixels,
    )
    features = model.encode_images(pixels)
    torch.testing.assert_close(features.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(model.encode_images(pixels[:, :1]), features)  # one channel is repeated
    weights = model.classifier(CLASSES, "chestmnist")
    torch.testing.assert_close(weights.norm(dim=-1), torch.ones(2))
    assert model.logits(features, weights).shape == (2, 2)
    torch.testing.assert_close(model.logit_scale, 1 / 0.07, rtol=0.05, atol=0)  # the init, slightly perturbed
    # the weights are the saved ones
    saved = torch.load(folders[vision] / "pytorch_model.bin", map_location="cpu", weights_only=True)
    torch.testing.assert_close(
        model.module.text_model.projection_head.weight, saved["text_model.projection_head.weight"]
    )


def original_feature_extractor(image, size: int = 224) -> np.ndarray:
    """``MedCLIPFeatureExtractor()(image)["pixel_values"][0]`` of RyanWangZf/MedCLIP (``medclip/dataset.py``,
    ``do_pad_square=True``), ported step by step with the transformers 4.23/4.24 ``ImageFeatureExtractionMixin``
    methods it calls on PIL images (the package pins transformers<=4.24, which cannot be installed beside ours)."""
    from PIL import Image

    # pad_img(img, min_size=self.size): an L canvas (pasting converts RGB to L), offsets int((size - x) / 2)
    x, y = image.size
    side = max(size, x, y)
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(image, (int((side - x) / 2), int((side - y) / 2)))
    # resize(image, size=224, resample=BICUBIC): an int size means (size, size), PIL's Image.resize
    image = canvas.resize((size, size), resample=Image.BICUBIC)
    # center_crop(image, 224): top/left = (224 - crop) // 2 on PIL, i.e. a no-op here
    top, left = (image.size[1] - size) // 2, (image.size[0] - size) // 2
    image = image.crop((left, top, left + size, top + size))
    # normalize: to_numpy_array rescales (rescale(image.astype(float32), 1 / 255.0): a float32 product), then
    # (image - mean) / std in float32; a channel axis
    array = np.array(image).astype(np.float32) * np.float32(1 / 255.0)
    mean, std = np.array(medclip.IMG_MEAN).astype(np.float32), np.array(medclip.IMG_STD).astype(np.float32)
    return ((array - mean) / std)[None]


SIZES = [(28, 28), (64, 64), (128, 128), (224, 224), (300, 300), (97, 131), (131, 97), (300, 227), (20, 250)]


@pytest.mark.parametrize("grey", [True, False], ids=["grey", "rgb"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_preprocessing_is_the_original_feature_extractors(size, grey):
    """Pad to a square (≥ 224), resize, MedCLIP mean/std: ours (PIL and batched tensors) equal the original."""
    from PIL import Image

    from hf_robustmed.models.preprocess import image_to_tensor

    rng = np.random.default_rng(size[0] * 3 + size[1])
    array = rng.integers(0, 256, size if grey else (*size, 3), np.uint8)
    original = torch.from_numpy(original_feature_extractor(Image.fromarray(array))).expand(3, -1, -1)
    ours = medclip.medclip_preprocess(224)(Image.fromarray(array).convert("RGB"))  # as preprocess_arrays calls it
    batched = medclip.medclip_transform(224)(image_to_tensor(array)[None])[0]
    assert torch.equal(ours, original) and torch.equal(batched, original)


# SHA-256 (first 16 hex digits) of the float32 ``pixel_values[0][0]`` that the original MedCLIPFeatureExtractor
# (class source of RyanWangZf/MedCLIP 9c3396f medclip/dataset.py, run under transformers 4.24.0, NumPy 1.26,
# Pillow 12.3) computed for the images of _original_inputs() converted to RGB.
ORIGINAL_DIGESTS = {
    "28x28_L": "57fb64bdd60e6c72",
    "64x64_RGB": "cb35a2f93c9a3d4a",
    "97x131_RGB": "29842c13010f0591",
    "131x97_L": "43eb8e7f254ca2fe",
    "300x227_RGB": "7f58c081c19deea9",
    "20x250_L": "98730b9d990d30f8",
    "225x223_RGB": "7fefa681b06ed3bf",
    "300x300_L": "34aa14a790cf9574",
}


def _original_inputs():
    rng = np.random.default_rng(42)
    for height, width in [
        (28, 28),
        (64, 64),
        (128, 128),
        (224, 224),
        (300, 300),
        (97, 131),
        (131, 97),
        (300, 227),
        (20, 250),
        (225, 223),
    ]:
        for mode in ("L", "RGB"):
            yield f"{height}x{width}_{mode}", rng.integers(0, 256, (height, width, 3)[: 2 + (mode == "RGB")], np.uint8)


def test_batched_preprocessing_gives_the_original_codes_outputs():
    import hashlib

    from hf_robustmed.models.preprocess import image_to_tensor

    digests = {}
    for key, array in _original_inputs():
        if key in ORIGINAL_DIGESTS:
            pixels = medclip.medclip_transform(224)(image_to_tensor(array)[None])[0, 0].contiguous().numpy()
            digests[key] = hashlib.sha256(pixels.tobytes()).hexdigest()[:16]
    assert digests == ORIGINAL_DIGESTS


def test_short_side_resize_and_crop_was_not_the_original():
    """The transform this replaced (short side → 224, centre crop) is far from the original off square ≥ 224 px."""
    from PIL import Image
    from torchvision import transforms

    old = transforms.Compose(
        [
            transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([medclip.IMG_MEAN], [medclip.IMG_STD]),
        ]
    )
    rng = np.random.default_rng(0)
    for size, apart in (((97, 131), True), ((28, 28), True), ((300, 300), False)):
        image = Image.fromarray(rng.integers(0, 256, size, np.uint8))
        gap = (old(image) - torch.from_numpy(original_feature_extractor(image))).abs().max().item()
        assert gap > 1.0 if apart else gap < 1e-6


def test_text_embedding_is_mean_of_layers_1_2_last_over_all_tokens(folders):
    from transformers import AutoTokenizer

    model = create_model(f"medclip:{folders['vit']}")
    texts = ["a", "the pneumonia of the left lung, a finding."]  # different lengths: padding in the batch
    tokenizer = AutoTokenizer.from_pretrained(folders["vit"] / "tokenizer")
    inputs = tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
    assert not inputs["attention_mask"].all()
    text = model.module.text_model
    with torch.no_grad():
        hidden = text.model(**inputs, output_hidden_states=True).hidden_states
        assert len(hidden) == 4  # embeddings + 3 layers: 1, 2 and last are distinct
        layers = (hidden[1] + hidden[2] + hidden[3]) / 3
        expected = torch.nn.functional.normalize(text.projection_head(layers.mean(1)), dim=-1)
        masked = (layers * inputs["attention_mask"][..., None]).sum(1) / inputs["attention_mask"].sum(1, keepdim=True)
    torch.testing.assert_close(model.encode_text(texts), expected)
    assert not torch.allclose(text.projection_head(masked[0]), text.projection_head(layers.mean(1)[0]))


def test_logit_scale_is_clamped(tmp_path):
    folder = save_tiny_medclip(tmp_path / "big", "vit", logit_scale=10.0)
    assert math.isclose(create_model(f"medclip:{folder}").logit_scale, math.exp(medclip.LOGIT_SCALE_MAX), rel_tol=1e-6)
    assert 100.0 <= math.exp(medclip.LOGIT_SCALE_MAX) <= 100.01  # MedCLIP's own bound, 4.6052 ≈ log 100


def _edit_weights(source, target, edit):
    import shutil

    shutil.copytree(source, target)
    state = torch.load(target / "pytorch_model.bin", map_location="cpu", weights_only=True)
    edit(state)
    torch.save(state, target / "pytorch_model.bin")
    return target


def test_strict_loading(folders, tmp_path):
    unexpected = _edit_weights(
        folders["vit"],
        tmp_path / "unexpected",
        lambda s: s.__setitem__("text_model.model.bogus.weight", torch.zeros(1)),
    )
    with pytest.raises(ValueError, match=r"unexpected keys \['text_model\.model\.bogus\.weight'\]"):
        create_model(f"medclip:{unexpected}")
    missing = _edit_weights(
        folders["resnet"], tmp_path / "missing", lambda s: s.pop("text_model.projection_head.weight")
    )
    with pytest.raises(ValueError, match=r"missing keys \['text_model\.projection_head\.weight'\]"):
        create_model(f"medclip:{missing}")
    shape = _edit_weights(
        folders["resnet"],
        tmp_path / "shape",
        lambda s: s.__setitem__("vision_model.model.fc.weight", torch.zeros(3, 3)),
    )
    with pytest.raises(ValueError, match="size mismatch"):
        create_model(f"medclip:{shape}")
    # allow-listed buffers (old transformers' BERT index buffers) are accepted, with or without them
    allowed = _edit_weights(
        folders["resnet"],
        tmp_path / "allowed",
        lambda s: (
            s.pop("text_model.model.embeddings.position_ids"),
            s.__setitem__("text_model.model.embeddings.token_type_ids", torch.zeros(1, 128, dtype=torch.long)),
        ),
    )
    create_model(f"medclip:{allowed}")


def test_safetensors_weights(folders, tmp_path):
    import shutil

    from safetensors.torch import save_file

    folder = tmp_path / "st"
    shutil.copytree(folders["vit"], folder)
    state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    (folder / "pytorch_model.bin").unlink()
    pixels = torch.zeros(1, 3, 32, 32)
    torch.testing.assert_close(
        create_model(f"medclip:{folder}").encode_images(pixels),
        create_model(f"medclip:{folders['vit']}").encode_images(pixels),
    )


def test_registered_names_need_the_download(monkeypatch, tmp_path):
    assert {"medclip-vit", "medclip-rn50"} <= set(list_models())
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    for name, variant in (("medclip-vit", "vit"), ("medclip-rn50", "resnet")):
        with pytest.raises(ValueError, match=rf"download_medclip\('{variant}'"):
            create_model(name)
    with pytest.raises(ValueError, match="vit' or 'resnet"):
        medclip.download_medclip("vitb16", tmp_path / "x")


def test_release_config_is_the_real_architecture():
    vit = medclip.release_config("vit")
    assert vit["swin_config"]["embed_dim"] == 96 and vit["swin_config"]["depths"] == [2, 2, 6, 2]
    assert vit["bert_config"]["vocab_size"] == 28996 and vit["tokenizer"] == "emilyalsentzer/Bio_ClinicalBERT"
    assert medclip.release_config("resnet")["resnet_layers"] == [3, 4, 6, 3]
    assert json.loads(json.dumps(vit)) == vit
    assert medclip.URLS == {
        "vit": "https://storage.googleapis.com/pytrial/medclip-vit-pretrained.zip",
        "resnet": "https://storage.googleapis.com/pytrial/medclip-pretrained.zip",
    }


def test_download_unzips_atomically(monkeypatch, tmp_path):
    import zipfile

    import hf_robustmed.download as download_module

    def fake_download(url, path, md5=None):
        with zipfile.ZipFile(path, "w") as zipped:
            zipped.writestr("medclip-vit-pretrained/pytorch_model.bin", b"weights")
        return path

    monkeypatch.setattr(download_module, "download", fake_download)
    folder = medclip.download_medclip("vit", tmp_path / "vit")
    assert (folder / "pytorch_model.bin").read_bytes() == b"weights"
    assert json.loads((folder / "medclip_config.json").read_text()) == medclip.release_config("vit")
    assert sorted(p.name for p in folder.iterdir()) == ["medclip_config.json", "pytorch_model.bin"]
