"""Batched preprocessing on uint8 tensors (``ImageTransform``) against each family's per-image native transform.

Tolerance guaranteed, for every family, at every input size tested (28, 64, 128, 224, 300, 97×131, 131×97,
227×224 px), grey or RGB: a max abs difference of **0 normalised units** — equal bit for bit — for open_clip
(CLIP, BiomedCLIP and the PEFT adapters over them; shortest/longest/squash resize modes), UniMed-CLIP, MedCLIP,
the ``rmc`` protocol (all Pillow-resized) and transformers CLIP (``CLIPImageProcessor`` of transformers ≥ 5, resized
by torch's uint8 kernel, and its PIL backend ``CLIPImageProcessorPil``). Each library's uint8 resize is reproduced
exactly (integer arithmetic, exact in float64 on any device) and its float32 scaling and normalisation are the same
operations in the same order. MedCLIP against its original code: ``tests/test_medclip.py``.
"""

import dataclasses
import logging
import platform

import numpy as np
import pytest
from conftest import require  # noqa: E402

torch = require("torch")
require("torchvision")
open_clip = require("open_clip")
transformers = require("transformers")

from PIL import Image  # noqa: E402

from hf_robustmed.models import ZeroShotModel, create_model  # noqa: E402
from hf_robustmed.models.medclip import medclip_preprocess, medclip_transform  # noqa: E402
from hf_robustmed.models.preprocess import (  # noqa: E402
    OPENAI_MEAN,
    OPENAI_STD,
    ImageTransform,
    from_clip_image_processor,
    from_open_clip,
    image_to_tensor,
    resize_uint8,
    to_grey,
)
from hf_robustmed.models.unimedclip import unimedclip_preprocess, unimedclip_transform  # noqa: E402
from hf_robustmed.protocols import PROTOCOLS, apply_protocol, protocol_image_transform, protocol_transform  # noqa: E402
from hf_robustmed.testing import save_tiny_open_clip, save_tiny_transformers_clip  # noqa: E402

SIZES = [(28, 28), (64, 64), (128, 128), (224, 224), (300, 300), (97, 131), (131, 97), (227, 224)]
# torchvision resizes uint8 bilinear with torch's uint8 kernel only on these CPUs (in float elsewhere).
UINT8_BILINEAR = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") or platform.machine() in (
    "aarch64",
    "arm64",
)


def _image(height: int, width: int, grey: bool, seed: int) -> np.ndarray:
    """Noise on a smooth gradient (noise is the worst case for bicubic overshoot and uint8 clipping)."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if grey else (height, width, 3)
    ramp = np.linspace(0, 255, width)[None, :, None] * np.linspace(0.2, 1, height)[:, None, None]
    smooth = ramp[..., 0] if grey else np.broadcast_to(ramp, shape)
    return np.clip(smooth + rng.normal(0, 60, shape), 0, 255).astype(np.uint8)


def _pil_path(preprocess, image: np.ndarray) -> torch.Tensor:
    """What ``ZeroShotModel.preprocess_arrays`` does with one image."""
    return preprocess(Image.fromarray(image).convert("RGB"))


def _tensor_path(transform: ImageTransform, image: np.ndarray) -> torch.Tensor:
    return transform(image_to_tensor(image)[None])[0]


def _families():
    """family → (native per-image transform, the ImageTransform)."""
    clip_cfg = {"size": 224, "mean": OPENAI_MEAN, "std": OPENAI_STD}
    rmc = PROTOCOLS["rmc"]
    processor = transformers.CLIPImageProcessor()
    families = {
        "open_clip": (
            open_clip.image_transform(224, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD),
            from_open_clip(clip_cfg),
        ),
        "open_clip-longest": (
            open_clip.image_transform(224, is_train=False, resize_mode="longest", fill_color=7),
            from_open_clip({**clip_cfg, "resize_mode": "longest", "fill_color": 7}),
        ),
        "open_clip-squash-bilinear": (
            open_clip.image_transform(224, is_train=False, resize_mode="squash", interpolation="bilinear"),
            from_open_clip({**clip_cfg, "resize_mode": "squash", "interpolation": "bilinear"}),
        ),
        "unimedclip": (unimedclip_preprocess(224), unimedclip_transform(224)),
        "medclip": (medclip_preprocess(224), medclip_transform(224)),
        "rmc-clip": (protocol_transform(rmc, "clip"), protocol_image_transform(rmc, "clip")),
        "rmc": (protocol_transform(rmc, None), protocol_image_transform(rmc, None)),
        "transformers": (_processor_transform(processor), from_clip_image_processor(processor)),
    }
    if hasattr(transformers, "CLIPImageProcessorPil"):  # transformers ≥ 5's PIL backend
        pil = transformers.CLIPImageProcessorPil()
        families["transformers-pil"] = (_processor_transform(pil), from_clip_image_processor(pil))
    return families


def _processor_transform(processor):
    return lambda image: torch.as_tensor(processor(images=image, return_tensors="pt")["pixel_values"][0])


FAMILIES = _families()


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("grey", [False, True], ids=["rgb", "grey"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_tensor_path_reproduces_the_native_transform(family, grey, size):
    native, transform = FAMILIES[family]
    image = _image(*size, grey=grey, seed=size[0] * 7 + size[1])
    expected, actual = _pil_path(native, image), _tensor_path(transform, image)
    assert actual.shape == expected.shape == (3, 224, 224) and actual.dtype == torch.float32
    assert torch.equal(actual, expected)  # max abs difference 0


def test_transformers_needs_torchs_resize_not_pillows():
    """transformers ≥ 5 resizes with torch's uint8 kernel, which rounds unlike Pillow's (by up to 2 grey levels)."""
    native, transform = FAMILIES["transformers"]
    assert (transform.resize_backend, transform.rescale, transform.crop_offset) == ("torch", "fused", "floor")
    image = _image(97, 131, grey=False, seed=0)
    as_pillow = dataclasses.replace(transform, resize_backend="pillow")
    gap = (_tensor_path(as_pillow, image) - _pil_path(native, image)).abs().max().item()
    assert 0.01 < gap <= 2 / 255 / min(OPENAI_STD) + 1e-6


@pytest.mark.parametrize("backend", ["pillow", "torch"])
def test_resize_is_the_backends_bit_for_bit(backend):
    from torchvision.transforms.v2 import functional

    rng = np.random.default_rng(1)
    for trial in range(40):
        height, width, out_height, out_width = (int(v) for v in rng.integers(1, 320, 4))
        interpolation = ("bicubic", "bilinear")[trial % 2 if backend == "pillow" or UINT8_BILINEAR else 0]
        image = image_to_tensor(rng.integers(0, 256, (height, width, 3), np.uint8))
        if backend == "pillow":
            resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[interpolation]
            pil = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((out_width, out_height), resample)
            expected = image_to_tensor(np.array(pil))
        else:
            expected = functional.resize(
                image, [out_height, out_width], functional.InterpolationMode(interpolation), antialias=True
            )
        assert torch.equal(resize_uint8(image[None], out_height, out_width, interpolation, backend)[0], expected)


def test_float_antialiased_interpolate_is_not_pillow():
    """Why resizing is not ``interpolate(antialias=True)`` in float: Pillow clips to uint8 between its passes."""
    image = _image(64, 64, grey=True, seed=3)
    pillow = torch.from_numpy(np.array(Image.fromarray(image).resize((224, 224), Image.BICUBIC))).float()
    floats = (
        torch.nn.functional.interpolate(
            torch.from_numpy(image)[None, None].float(), size=(224, 224), mode="bicubic", antialias=True
        )
        .round()
        .clamp(0, 255)[0, 0]
    )
    assert (floats - pillow).abs().max() > 2


def test_grey_conversion_is_pillows():
    image = np.random.default_rng(2).integers(0, 256, (33, 45, 3), np.uint8)
    expected = np.asarray(Image.fromarray(image).convert("L"))
    np.testing.assert_array_equal(to_grey(image_to_tensor(image)[None])[0, 0].numpy(), expected)


def test_to_pil_is_the_same_transform():
    for transform in (
        from_open_clip({"size": 224}),
        medclip_transform(224),
        FAMILIES["transformers"][1],
        from_open_clip({"size": 224, "resize_mode": "longest"}),
    ):
        for size in [(28, 28), (97, 131), (300, 300)]:
            image = _image(*size, grey=False, seed=5)
            assert torch.equal(_pil_path(transform.to_pil(), image), _tensor_path(transform, image))


def test_batches_and_sequences_of_mixed_sizes():
    transform = from_open_clip({"size": 32})
    images = [
        _image(28, 28, grey=True, seed=1),
        _image(40, 50, grey=False, seed=2),
        _image(28, 28, grey=True, seed=3),
        _image(28, 28, grey=False, seed=4),
    ]
    one_by_one = torch.stack([_tensor_path(transform, image) for image in images])
    assert torch.equal(transform([image_to_tensor(image) for image in images]), one_by_one)
    batch = torch.stack([image_to_tensor(images[0]), image_to_tensor(images[2])])
    assert torch.equal(transform(batch), one_by_one[[0, 2]])
    with pytest.raises(ValueError, match="uint8"):
        transform(batch.float())
    with pytest.raises(ValueError, match="C = 1 or 3"):
        transform(torch.zeros(1, 4, 8, 8, dtype=torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu_the_results_are_the_same():
    images = [image_to_tensor(_image(*size, grey=grey, seed=7)) for size in SIZES for grey in (False, True)]
    for name, (_, transform) in FAMILIES.items():
        on_gpu = transform([image.cuda() for image in images])
        assert on_gpu.device.type == "cuda"
        assert torch.equal(on_gpu.cpu(), transform(images)), name


def test_describe_and_validation():
    record = medclip_transform(224).describe()
    assert record["resize_mode"] == "pad_square" and record["grey"] and record["output_size"] == 224
    with pytest.raises(ValueError, match="resize_mode"):
        ImageTransform(224, resize_mode="crop")
    assert from_open_clip({"size": (224, 256)}) is None  # non-square: not reproduced
    assert from_clip_image_processor(transformers.CLIPImageProcessor(size={"longest_edge": 224})) is None


def test_openai_constants_are_open_clips():
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    assert (OPENAI_MEAN, OPENAI_STD) == (tuple(OPENAI_DATASET_MEAN), tuple(OPENAI_DATASET_STD))


def test_double_normalisation_of_rmc_clip():
    once, twice = protocol_image_transform(PROTOCOLS["rmc"], None), protocol_image_transform(PROTOCOLS["rmc"], "clip")
    image = image_to_tensor(_image(28, 28, grey=False, seed=9))[None]
    mean, std = torch.tensor(OPENAI_MEAN).view(3, 1, 1), torch.tensor(OPENAI_STD).view(3, 1, 1)
    torch.testing.assert_close(twice(image)[0], (once(image)[0] - mean) / std)


@pytest.mark.parametrize("rescale", ["divide", "multiply", "fused"])
@pytest.mark.parametrize("times", [1, 2])
def test_cpu_table_equals_the_float_operations(rescale, times):
    """On the CPU, ``to_float`` looks every value up in a table of the native float32 operations: the same bits as
    those operations on the whole tensor, for every uint8 value, channel and layout (grey expanded, cropped)."""
    transform = ImageTransform(224, rescale=rescale, normalise_times=times, mean=OPENAI_MEAN, std=OPENAI_STD)
    every = torch.arange(256, dtype=torch.uint8).repeat(36).view(2, 3, 32, 48)  # each value in each channel
    grey = torch.randint(0, 256, (3, 1, 20, 24), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for pixels in (every, every[:, :, 3:29, 5:40], grey.expand(-1, 3, -1, -1), every[0]):
        exact = transform._exact_float(pixels, torch.empty(pixels.shape))
        assert torch.equal(transform.to_float(pixels), exact)
        out = torch.full(pixels.shape, float("nan"))
        assert transform.to_float(pixels, out=out) is out and torch.equal(out, exact)
    with pytest.raises(ValueError, match="out must be"):
        transform.to_float(every, out=torch.empty(every.shape, dtype=torch.float64))


def test_reuse_outputs_reuses_one_buffer_per_shape_only_inside_the_block():
    from hf_robustmed.models.preprocess import reuse_outputs

    transform = ImageTransform(224, mean=OPENAI_MEAN, std=OPENAI_STD)
    a, b = (torch.full((2, 3, 224, 224), v, dtype=torch.uint8) for v in (10, 200))
    first, second = transform(a), transform(b)
    assert first.data_ptr() != second.data_ptr() and not torch.equal(first, second)
    with reuse_outputs():
        x = transform(a)
        expected = x.clone()
        y = transform(b)
        assert y.data_ptr() == x.data_ptr() and torch.equal(y, second)  # the previous output is overwritten
        z = transform(torch.cat([a, b]))  # another shape: another buffer
        assert z.shape[0] == 4 and torch.equal(z[:2], expected)
        assert torch.equal(transform([a[0], b[0][:, :100]])[0], expected[0])  # sequences: a new tensor each
    assert transform(a).data_ptr() != x.data_ptr()


# ------------------------------------------------------------------------------------- through the loaders


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("preprocess")
    return {
        "open_clip": save_tiny_open_clip(root / "open_clip"),
        "transformers": save_tiny_transformers_clip(root / "tf"),
    }


def _arrays():
    return [_image(28, 28, grey=True, seed=1), _image(97, 131, grey=False, seed=2), _image(32, 32, grey=False, seed=3)]


def test_open_clip_loader_sets_its_transform(folders):
    model = create_model(f"local-dir:{folders['open_clip']}")
    assert model.transform == from_open_clip(open_clip.get_model_preprocess_cfg(model.module))
    assert model.transform.size == 32
    pixels = model.preprocess_batch([image_to_tensor(image) for image in _arrays()])
    assert torch.equal(pixels, model.preprocess_arrays(_arrays()))


def test_transformers_loader_sets_its_transform(folders):
    model = create_model(f"transformers:{folders['transformers']}")
    assert model.transform is not None and model.transform.crop_offset == "floor"
    pixels = model.preprocess_batch([image_to_tensor(image) for image in _arrays()])
    assert torch.equal(pixels, model.preprocess_arrays(_arrays()))


def test_a_model_without_transform_falls_back_to_pil_and_says_so(folders, caplog):
    model = create_model(f"local-dir:{folders['open_clip']}")
    plain = ZeroShotModel(
        name="user-made",
        module=model.module,
        preprocess=model.preprocess,
        image_encoder=model.image_encoder,
        text_encoder=model.text_encoder,
        logit_scale=1.0,
    )
    images = [image_to_tensor(image) for image in _arrays()]
    with caplog.at_level(logging.DEBUG, logger="hf_robustmed.models.base"):
        pixels = plain.preprocess_batch(images)
        plain.preprocess_batch(images)
    assert torch.equal(pixels, model.preprocess_arrays(_arrays()))
    assert sum("user-made" in record.message for record in caplog.records) == 1  # logged once


def test_protocol_model_batches_the_protocols_transform(folders):
    model = create_model(f"local-dir:{folders['open_clip']}")
    for family in ("clip", None):
        wrapped = apply_protocol(model, "rmc", family=family)
        pixels = wrapped.preprocess_batch([image_to_tensor(image) for image in _arrays()])
        assert pixels.shape == (3, 3, 224, 224)
        assert torch.equal(pixels, wrapped.preprocess_arrays(_arrays()))


def test_biomedclip_unimedclip_and_adapters_batch_their_own_transform(monkeypatch, tmp_path):
    """Through their real loaders, offline: the batched transform is the model's own preprocessing, bit for bit."""
    require("peft")
    from conftest import seed_hub_families

    adapter = seed_hub_families(monkeypatch, tmp_path)
    for spec in ("biomedclip", "unimedclip", f"peft:{adapter}"):
        model = create_model(spec)
        assert model.transform is not None
        pixels = model.preprocess_batch([image_to_tensor(image) for image in _arrays()])
        assert torch.equal(pixels, model.preprocess_arrays(_arrays()))
