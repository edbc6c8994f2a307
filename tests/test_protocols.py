"""Zero-shot protocols: each switch of ``rmc`` has its effect, every output says so; bf16 agrees with fp32.

Tiny stand-ins at 224 px (the protocol's size): an open_clip CLIP in a local folder, BiomedCLIP and UniMed-CLIP
seeded into an offline Hub cache under their real repo ids, MedCLIP in its release layout; and a synthetic model
whose features are chosen by hand. The benchmark holds MedMNIST-C (pneumoniamnist, bloodmnist) and MediMeta-C
(fundus, whose original prompt list is ordered differently from its labels).
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from conftest import go_offline, require  # noqa: E402

torch = require("torch")
require("open_clip")
require("accelerate")

from data_fixtures import write_medimeta, write_medmnist  # noqa: E402

from hf_robustmed.data import build_benchmark  # noqa: E402
from hf_robustmed.data.benchmarks import medimeta_c_jobs, medmnist_c_jobs  # noqa: E402
from hf_robustmed.evaluation import Evaluator, evaluate, iter_images, plan_cells  # noqa: E402
from hf_robustmed.models import ZeroShotModel, create_model  # noqa: E402
from hf_robustmed.models.prompts import PAPER_TEMPLATE  # noqa: E402
from hf_robustmed.protocols import (  # noqa: E402
    OPENAI_MEAN,
    OPENAI_STD,
    PROTOCOLS,
    apply_protocol,
    family_of,
    get_protocol,
)

FUNDUS_LABELS = {0: "normal", 1: "abnormal"}  # MedIMeta's order; the original prompt list is abnormal, normal


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Benchmark, tiny models, and an offline Hub cache seeded with BiomedCLIP and UniMed-CLIP stand-ins."""
    from hf_robustmed.testing import save_tiny_open_clip, seed_tiny_biomedclip, seed_tiny_unimedclip

    root = tmp_path_factory.mktemp("protocols")
    (root / "src").mkdir()
    write_medmnist(root / "src", "pneumoniamnist", rgb=False, classes=2, counts=(3, 3, 7), seed=8)
    write_medmnist(root / "src", "bloodmnist", rgb=True, classes=8, counts=(3, 3, 5), seed=9)
    write_medimeta(root / "src", "fundus", "disease presence", FUNDUS_LABELS, rgb=True, n=15, seed=3)
    jobs = medmnist_c_jobs(
        root / "src", datasets=["pneumoniamnist", "bloodmnist"], corruptions=["pixelate"], severities=(1,), size=28
    )
    jobs += medimeta_c_jobs(
        root / "src", datasets=["fundus"], corruptions=["pixelate"], severities=(1,), splits=("test",)
    )
    build_benchmark(jobs, root / "bench", shard_rows=4, progress=False)
    clip = f"local-dir:{save_tiny_open_clip(root / 'clip', image_size=224)}"
    with pytest.MonkeyPatch.context() as patch:
        go_offline(patch, root / "hub")
        seed_tiny_biomedclip(root / "hub", root / "work", image_size=224)
        seed_tiny_unimedclip(root / "hub", root / "work")
        yield {"root": root, "bench": root / "bench", "clip": clip}


def images_of(env, dataset: str) -> list[np.ndarray]:
    cell = next(c for c in plan_cells(env["bench"], datasets=[dataset]) if c.corruption == "clean")
    return [image for batch, _, _ in iter_images(env["bench"], cell, 100) for image in batch]


def run(env, models, out, protocol: str, datasets=None):
    """Evaluates (already created) models; returns {(model, config): cell frame} and the results."""
    evaluator = Evaluator(env["bench"], env["root"] / out, protocol=protocol, batch_size=4)
    cells = plan_cells(env["bench"], datasets=datasets)
    results = evaluator.run(models, cells)
    frames = {(m.name, c.config): pd.read_parquet(evaluator.cell_path(m.name, c)) for m in models for c in cells}
    return frames, results


def probs(frame: pd.DataFrame) -> np.ndarray:
    return np.stack(frame["probs"].to_numpy())


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------ the registry


def test_protocols_are_data_and_families_come_from_names():
    rmc = get_protocol("rmc")
    assert (rmc.image_size, rmc.logit_scale, rmc.templates) == (224, False, (PAPER_TEMPLATE,))
    assert rmc.double_normalised == {"clip"} and rmc.raw_text == {"biomedclip", "unimedclip"}
    assert rmc.class_names["oct"] == ("CNV", "NORMAL", "DME", "DRUSEN")
    assert get_protocol("standard").record()["preprocessing"] == "model's own"
    with pytest.raises(ValueError, match="unknown protocol 'paper'; valid: standard, rmc"):
        get_protocol("paper")
    expected = {
        "clip-vit-b16": "clip",
        "clip-rn50": "clip",
        "open_clip:ViT-B-16-quickgelu/openai": "clip",
        "biomedclip": "biomedclip",
        "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224": "biomedclip",
        "unimedclip": "unimedclip",
        "unimedclip:/x/y.pt": "unimedclip",
        "medclip-vit": "medclip",
        "medclip:/x": "medclip",
        "local-dir:/x": None,
        "pubmedclip": None,
    }
    assert {name: family_of(name) for name in expected} == expected


def test_the_family_is_the_loaded_models_whatever_its_name(env, tmp_path):
    """A renamed BiomedCLIP keeps BiomedCLIP's raw text under rmc; a LoRA adapter over it is ``biomedclip-lora``,
    whose text the original RobustMedCLIP wrapper normalised (``BiomedCLIPViT_LoRA.text_features``)."""
    require("peft")
    from hf_robustmed.adaptation.lora import add_lora
    from hf_robustmed.testing import BIOMEDCLIP_REPO

    biomedclip = create_model("biomedclip")
    renamed = dataclasses.replace(biomedclip, name="my-model")
    by_spec = create_model(f"hf-hub:{BIOMEDCLIP_REPO}")
    assert (biomedclip.family, renamed.family, by_spec.family) == ("biomedclip",) * 3
    assert create_model("unimedclip").family == "unimedclip" and create_model(env["clip"]).family is None
    assert not apply_protocol(renamed, "rmc").normalise_text
    lora = add_lora(
        biomedclip.module,
        BIOMEDCLIP_REPO,
        rank=2,
        alpha=2,
        dropout=0.0,
        target_modules=r"visual\.trunk\.blocks\.\d+\.attn\.qkv",
        init_lora_weights=False,
    )
    lora.save_pretrained(tmp_path / "adapter")
    adapter = create_model(f"peft:{tmp_path / 'adapter'}")
    assert adapter.family == "biomedclip-lora" and family_of("robustmedclip") == "biomedclip-lora"
    assert apply_protocol(adapter, "rmc").normalise_text
    assert apply_protocol(adapter, "rmc", family="biomedclip").normalise_text is False  # an explicit override wins


def test_rmc_records_d15_as_a_known_defect_it_does_not_reproduce():
    rmc, standard = get_protocol("rmc"), get_protocol("standard")
    assert "D15" not in rmc.defects, "eval mode is kept: D15 is not reproduced"
    assert "D15" in rmc.description and "eval mode" in rmc.description
    record = rmc.record()
    assert set(record["defects_not_reproduced"]) == {"D15"}
    d15 = record["defects_not_reproduced"]["D15"]
    assert "dropout" in d15 and "BatchNorm" in d15
    assert "eval mode" in record["eval_mode"] and standard.record()["defects_not_reproduced"] == {}
    assert json.loads(json.dumps(record)) == record  # written to protocol.json as is


def test_rmc_class_lists_must_reorder_the_datas_names():
    rmc = get_protocol("rmc")
    assert rmc.class_names_for("fundus", ["normal", "abnormal"]) == ["abnormal", "normal"]
    assert rmc.class_names_for("oct", ["CNV", "DME", "DRUSEN", "NORMAL"]) == ["CNV", "NORMAL", "DME", "DRUSEN"]
    assert rmc.class_names_for("my_dataset", ["b", "a"]) == ["b", "a"]  # no original list: the data's order
    with pytest.raises(ValueError, match="not the data's"):
        rmc.class_names_for("fundus", ["normal", "diseased"])


# ------------------------------------------------------------------------------------------ D3: preprocessing


def test_rmc_preprocessing_is_openai_for_every_model_and_twice_for_clip(env, tmp_path):
    from hf_robustmed.testing import save_tiny_medclip

    image = np.random.default_rng(0).integers(0, 255, (224, 224, 3), np.uint8)
    mean, std = torch.tensor(OPENAI_MEAN)[:, None, None], torch.tensor(OPENAI_STD)[:, None, None]
    once = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
    clip = create_model(env["clip"])
    torch.testing.assert_close(
        apply_protocol(clip, "rmc", family="clip").preprocess_arrays([image])[0], (once - mean) / std
    )
    torch.testing.assert_close(apply_protocol(clip, "rmc").preprocess_arrays([image])[0], once)  # family unknown
    medclip = create_model(f"medclip:{save_tiny_medclip(tmp_path / 'medclip', image_size=224)}")
    torch.testing.assert_close(apply_protocol(medclip, "rmc").preprocess_arrays([image])[0], once)
    assert not torch.allclose(medclip.preprocess_arrays([image])[0], once)  # its own: grey, MedCLIP mean/std
    assert apply_protocol(clip, "standard") is clip


# ------------------------------------------------------------------------------------------ D2: text features


@pytest.mark.parametrize("name", ["biomedclip", "unimedclip"])
def test_rmc_keeps_biomedclip_and_unimedclip_text_features_raw(env, name):
    model = create_model(name)
    names = ["normal", "pneumonia"]
    prompts = [PAPER_TEMPLATE.format(c=c, d="pneumoniamnist") for c in names]
    raw = model.text_encoder(prompts).float().detach()
    rmc = apply_protocol(model, "rmc").classifier(names, "pneumoniamnist", (PAPER_TEMPLATE,))
    torch.testing.assert_close(rmc, raw)
    assert not torch.allclose(rmc.norm(dim=-1), torch.ones(2), atol=1e-3)
    standard = model.classifier(names, "pneumoniamnist")
    torch.testing.assert_close(standard, torch.nn.functional.normalize(raw, dim=-1))


def synthetic_model(name: str = "biomedclip", family: str | None = "biomedclip") -> ZeroShotModel:
    """Text of class 'normal' 10× longer than that of 'pneumonia', at a wider angle to every image."""
    vectors = {"normal": torch.tensor([10.0, 0.0]), "pneumonia": torch.tensor([0.6, 0.8])}
    return ZeroShotModel(
        name=name,
        module=torch.nn.Identity(),
        preprocess=lambda image: torch.zeros(3, 8, 8),
        image_encoder=lambda pixels: torch.tensor([[0.3, 0.954]]).expand(len(pixels), 2),
        text_encoder=lambda texts: torch.stack(
            [vectors["normal" if " of a normal " in t else "pneumonia"] for t in texts]
        ),
        logit_scale=100.0,
        family=family,
    )


def test_unnormalised_text_features_change_predictions(env):
    model = synthetic_model("biomedclip")
    standard, _ = run(env, [model], "d2-standard", "standard", ["pneumoniamnist"])
    rmc, _ = run(env, [model], "d2-rmc", "rmc", ["pneumoniamnist"])
    for config in ("pneumoniamnist-clean", "pneumoniamnist-pixelate-1"):
        assert set(standard["biomedclip", config]["pred"]) == {1}  # cosines: 0.30 vs 0.94
        assert set(rmc["biomedclip", config]["pred"]) == {0}  # raw products: 3.0 vs 0.94
        image = np.array([0.3, 0.954]) / np.linalg.norm([0.3, 0.954])
        expected = softmax(np.array([[10 * image[0], 0.6 * image[0] + 0.8 * image[1]]]))  # no logit scale
        np.testing.assert_allclose(probs(rmc["biomedclip", config]), np.repeat(expected, 7, 0), rtol=1e-5)
    renamed, _ = run(
        env, [synthetic_model("robustmedclip", "biomedclip-lora")], "d2-other", "rmc", ["pneumoniamnist"]
    )  # normalised family
    assert set(renamed["robustmedclip", "pneumoniamnist-clean"]["pred"]) == {1}


# ------------------------------------------------------------------------------------------ D6 and D4


def test_raw_cosine_changes_probabilities_not_predictions(env):
    model = create_model(env["clip"])  # its own preprocessing is the protocol's: only the logit scale differs
    image = images_of(env, "bloodmnist")[0]
    torch.testing.assert_close(
        apply_protocol(model, "rmc").preprocess_arrays([image]), model.preprocess_arrays([image])
    )
    standard, _ = run(env, [model], "d6-standard", "standard", ["bloodmnist"])
    rmc, _ = run(env, [model], "d6-rmc", "rmc", ["bloodmnist"])
    for key in standard:
        assert standard[key]["pred"].tolist() == rmc[key]["pred"].tolist()
        assert not np.allclose(probs(standard[key]), probs(rmc[key]), atol=1e-3)
        # softmax(s·cos) → softmax(cos): undo the scale on the log-probabilities
        np.testing.assert_allclose(
            softmax(np.log(probs(standard[key])) / model.logit_scale), probs(rmc[key]), rtol=1e-4, atol=1e-6
        )


def test_rmc_pairs_prompts_with_labels_in_the_original_order(env):
    model = dataclasses.replace(create_model(env["clip"]), logit_scale=1.0)  # then only the class order differs
    standard, _ = run(env, [model], "d4-standard", "standard", ["fundus", "bloodmnist"])
    rmc, _ = run(env, [model], "d4-rmc", "rmc", ["fundus", "bloodmnist"])
    for config in ("fundus-clean", "fundus-pixelate-1"):
        np.testing.assert_allclose(
            probs(rmc[model.name, config]), probs(standard[model.name, config])[:, ::-1], rtol=1e-5, atol=1e-6
        )
        assert (rmc[model.name, config]["pred"] == 1 - standard[model.name, config]["pred"]).all()
    summary = json.loads((env["root"] / "d4-rmc" / "summary.json").read_text())
    assert summary["protocol"]["class_names"]["fundus"] == {
        "prompts": ["abnormal", "normal"],
        "labels": ["normal", "abnormal"],
    }
    assert (
        summary["protocol"]["class_names"]["bloodmnist"]["prompts"]
        == summary["protocol"]["class_names"]["bloodmnist"]["labels"]
    )


# ------------------------------------------------------------------------------------------ outputs


def test_every_rmc_output_says_so(env):
    out = env["root"] / "marked"
    results = evaluate([env["clip"]], str(env["bench"]), out, datasets=["pneumoniamnist"], batch_size=4, protocol="rmc")
    assert set(results["protocol"]) == {"rmc"}
    assert set(pd.read_csv(out / "results.csv")["protocol"]) == {"rmc"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["name"] == "rmc" and summary["protocol"]["defects"] == ["D2", "D3", "D4", "D6"]
    assert summary["protocol"]["model_families"] == {env["clip"]: None}
    recorded = json.loads((out / "protocol.json").read_text())
    assert recorded["name"] == "rmc"
    assert "not reproduced" in recorded["defects_not_reproduced"]["D15"].lower()  # D15 documented, not copied
    import pyarrow.parquet as pq

    for cell in out.glob("cells/*/*/*.parquet"):
        assert pq.read_schema(cell).metadata[b"hf_robustmed.protocol"] == b"rmc"
    with pytest.raises(ValueError, match="holds results of protocol 'rmc'"):
        evaluate([env["clip"]], str(env["bench"]), out, datasets=["pneumoniamnist"], protocol="standard")
    with pytest.raises(ValueError, match="original template only"):
        evaluate(
            [env["clip"]], str(env["bench"]), env["root"] / "other", templates=("an image of {c}",), protocol="rmc"
        )


def test_standard_results_are_unchanged_and_named(env):
    out = env["root"] / "plain"
    results = evaluate([env["clip"]], str(env["bench"]), out, datasets=["pneumoniamnist"], batch_size=4)
    columns = [c for c in results.columns if c != "weights"]  # weights: the models' provenance, any protocol
    assert columns == ["model", "dataset", "corruption", "severity", "metric", "value", "n"]
    assert json.loads((out / "summary.json").read_text())["protocol"]["name"] == "standard"
    with pytest.raises(ValueError, match="holds results of protocol 'standard'"):
        evaluate([env["clip"]], str(env["bench"]), out, datasets=["pneumoniamnist"], protocol="rmc")
    assert PROTOCOLS["standard"].check_templates(["an image of {c}"]) == ("an image of {c}",)


def test_cli_protocol_flag(env):
    from hf_robustmed.cli import main

    out = env["root"] / "cli"
    args = [
        "evaluate",
        "--models",
        env["clip"],
        "--benchmark",
        str(env["bench"]),
        "--datasets",
        "pneumoniamnist",
        "--batch-size",
        "4",
        "-o",
        str(out),
    ]
    assert main([*args, "--protocol", "rmc"]) == 0
    assert json.loads((out / "summary.json").read_text())["protocol"]["name"] == "rmc"
    with pytest.raises(SystemExit):
        main([*args, "--protocol", "paper"])


# ------------------------------------------------------------------------------------------ mixed precision


def test_bf16_agrees_with_fp32(env, fresh_accelerate_state):
    """bf16 autocast on CPU: probabilities within 0.02 of fp32, and the same predictions wherever fp32's top two
    probabilities are more than 0.04 apart (a closer call may legitimately flip)."""
    from accelerate.state import AcceleratorState

    models = ["biomedclip", "unimedclip"]
    fp32 = evaluate(models, str(env["bench"]), env["root"] / "fp32", batch_size=4)
    AcceleratorState._reset_state(reset_partial_state=True)
    bf16 = evaluate(models, str(env["bench"]), env["root"] / "bf16", batch_size=4, mixed_precision="bf16")
    assert AcceleratorState().mixed_precision == "bf16"
    decided = 0
    for cell in (env["root"] / "fp32").glob("cells/*/*/*.parquet"):
        a, b = pd.read_parquet(cell), pd.read_parquet(env["root"] / "bf16" / cell.relative_to(env["root"] / "fp32"))
        pa, pb = probs(a), probs(b)
        np.testing.assert_allclose(pb, pa, atol=0.02)
        top2 = np.sort(pa, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 0.04
        assert (a["pred"][clear] == b["pred"][clear]).all()
        decided += clear.sum()
    assert decided >= 20  # the comparison is not vacuous
    pd.testing.assert_frame_equal(
        fp32[["model", "dataset", "corruption", "severity", "metric", "n"]],
        bf16[["model", "dataset", "corruption", "severity", "metric", "n"]],
    )
