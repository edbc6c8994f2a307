"""Stand-ins under real names: every stand-in's files carry a marker, every loader reports it (a warning naming the
model, and ``model.provenance``), adapters trained on a stand-in inherit it, and the demo's offline stand-in
cache never leaks into the rest of the process."""

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from conftest import go_offline, require  # noqa: E402

torch = require("torch")
require("open_clip")
require("peft")

from hf_robustmed.models import ZeroShotModel, create_model  # noqa: E402
from hf_robustmed.models.provenance import STANDIN_KEY, stored_provenance  # noqa: E402
from hf_robustmed.testing import (  # noqa: E402
    BIOMEDCLIP_REPO,
    save_tiny_open_clip,
    save_tiny_transformers_clip,
    seed_hub_cache,
    seed_tiny_biomedclip,
)

STANDIN_WARNING = "loaded STAND-IN weights"


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    return go_offline(monkeypatch, tmp_path / "hub")


def _assert_stand_in(model: ZeroShotModel, caplog, name: str) -> None:
    assert model.provenance["weights"] == "stand-in", model.provenance
    assert model.provenance["detail"]
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and STANDIN_WARNING in r.getMessage()
    ]
    assert any(repr(name) in message for message in warnings), warnings


def _strip_marker(config: Path) -> None:
    """The same files without the marker: how the real model's files look."""
    data = json.loads(config.read_text())
    data.pop(STANDIN_KEY)
    config.write_text(json.dumps(data))


def test_the_default_provenance_is_pretrained():
    model = ZeroShotModel("m", torch.nn.Identity(), None, None, None, 1.0)
    assert model.provenance == {"weights": "pretrained"}
    assert ZeroShotModel("n", torch.nn.Identity(), None, None, None, 1.0).provenance is not model.provenance


def test_biomedclip_seeded_under_its_real_repo_id_says_it_is_a_stand_in(tmp_path, offline_hub, caplog):
    seed_tiny_biomedclip(offline_hub, tmp_path / "work")
    with caplog.at_level(logging.WARNING):
        model = create_model("biomedclip")  # the issue: the registry name, the README's exported cache
    _assert_stand_in(model, caplog, "biomedclip")
    assert BIOMEDCLIP_REPO in model.provenance["detail"]
    assert stored_provenance("biomedclip")["weights"] == "stand-in"  # read from the cache without loading


def test_open_clip_and_transformers_stand_ins_and_their_unmarked_copies(tmp_path, caplog):
    folders = {
        "local-dir": save_tiny_open_clip(tmp_path / "oc"),
        "transformers": save_tiny_transformers_clip(tmp_path / "tf"),
    }
    for scheme, folder in folders.items():
        spec = f"{scheme}:{folder}"
        with caplog.at_level(logging.WARNING):
            _assert_stand_in(create_model(spec), caplog, spec)
        real = tmp_path / f"{scheme}-real"
        shutil.copytree(folder, real)
        _strip_marker(real / ("open_clip_config.json" if scheme == "local-dir" else "config.json"))
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            model = create_model(f"{scheme}:{real}")
        assert model.provenance["weights"] == "pretrained" and str(real) in model.provenance["detail"]
        assert not [r for r in caplog.records if STANDIN_WARNING in r.getMessage()]


def test_the_hf_hub_scheme_reads_the_marker_of_the_cached_repo(tmp_path, offline_hub, caplog):
    folder = save_tiny_open_clip(tmp_path / "oc")
    seed_hub_cache("org/tiny", folder, offline_hub)
    real = tmp_path / "real"
    shutil.copytree(folder, real)
    _strip_marker(real / "open_clip_config.json")
    seed_hub_cache("org/real", real, offline_hub)
    with caplog.at_level(logging.WARNING):
        _assert_stand_in(create_model("hf-hub:org/tiny"), caplog, "hf-hub:org/tiny")
    assert create_model("hf-hub:org/real").provenance["weights"] == "pretrained"
    assert stored_provenance("hf-hub:org/real")["weights"] == "pretrained"
    assert stored_provenance("hf-hub:org/absent")["weights"] == "unknown"


def test_medclip_stand_in(tmp_path, caplog):
    from hf_robustmed.models.medclip import CONFIG_NAME
    from hf_robustmed.testing import save_tiny_medclip

    folder = save_tiny_medclip(tmp_path / "medclip")
    assert json.loads((folder / CONFIG_NAME).read_text())[STANDIN_KEY]["weights"] == "stand-in"
    with caplog.at_level(logging.WARNING):
        _assert_stand_in(create_model(f"medclip:{folder}"), caplog, f"medclip:{folder}")
    _strip_marker(folder / CONFIG_NAME)
    assert create_model(f"medclip:{folder}").provenance["weights"] == "pretrained"


def test_unimedclip_stand_in_checkpoint_carries_the_marker(tmp_path, offline_hub, caplog):
    from hf_robustmed.testing import seed_tiny_unimedclip

    seed_tiny_unimedclip(offline_hub, tmp_path / "work")
    with caplog.at_level(logging.WARNING):
        model = create_model("unimedclip")
    _assert_stand_in(model, caplog, "unimedclip")


# --------------------------------------------------------------------------------------------------- adapters


def _adapter(base: ZeroShotModel, folder: Path) -> Path:
    from hf_robustmed.adaptation.lora import add_lora

    peft_model = add_lora(
        base.module,
        BIOMEDCLIP_REPO,
        rank=2,
        alpha=2,
        dropout=0.0,
        target_modules=r"visual\.trunk\.blocks\.\d+\.attn\.qkv",
    )
    peft_model.save_pretrained(folder, save_embedding_layers=False)
    return folder


def _card(folder: Path):
    from hf_robustmed.adaptation.card import write_adapter_card
    from hf_robustmed.adaptation.config import TrainConfig

    summary = {
        "trainable_parameters": 10,
        "epochs_run": 1,
        "classes": 2,
        "datasets": ["toy"],
        "selection": "last",
        "selection_leaks_test_data": False,
        "selected_epoch": 1,
        "selection_score": None,
    }
    rows = [{"dataset": "toy", "clean": 0.5, "corrupted": 0.4}]
    return write_adapter_card(folder, TrainConfig(base_model="biomedclip", datasets=["toy"]), summary, rows=rows)


def test_an_adapter_trained_on_a_stand_in_inherits_it_in_its_card_and_when_loaded(tmp_path, offline_hub, caplog):
    from huggingface_hub import ModelCard

    seed_tiny_biomedclip(offline_hub, tmp_path / "work")
    adapter = _adapter(create_model("biomedclip"), tmp_path / "adapter")
    card = ModelCard.load(_card(adapter))
    assert card.data.to_dict()[STANDIN_KEY]["weights"] == "stand-in"
    assert "**Stand-in weights.**" in card.text and "its weights and results mean nothing" in card.text
    results = card.text[card.text.index("## Robustness results") :]
    assert results.splitlines()[2].startswith("> **Stand-in weights.**")  # right above the numbers
    with caplog.at_level(logging.WARNING):
        model = create_model(f"peft:{adapter}")
    _assert_stand_in(model, caplog, f"peft:{adapter}")

    # The same adapter over a base without the marker (the real BiomedCLIP, as far as the files say): the adapter's
    # card still says it was trained on a stand-in.
    snapshot = next((offline_hub / f"models--{BIOMEDCLIP_REPO.replace('/', '--')}" / "snapshots").iterdir())
    _strip_marker(snapshot / "open_clip_config.json")
    assert create_model("biomedclip").provenance["weights"] == "pretrained"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        model = create_model(f"peft:{adapter}")
    _assert_stand_in(model, caplog, f"peft:{adapter}")
    assert "trained on a stand-in base" in model.provenance["detail"]


def test_an_adapter_card_takes_stand_in_results_into_account(tmp_path, offline_hub):
    import pandas as pd

    from hf_robustmed.adaptation.card import standin_reason
    from hf_robustmed.report import model_weights

    assert standin_reason(tmp_path, "biomedclip", "pretrained") is None  # base not cached here, results real
    assert "evaluation results" in standin_reason(tmp_path, "biomedclip", "stand-in")
    results = pd.DataFrame({"model": ["a", "a", "b"], "weights": ["stand-in", "pretrained", "pretrained"]})
    assert model_weights(results) == {"a": "stand-in", "b": "pretrained"}


# --------------------------------------------------------------------------------------------------- the demo


def _hub_state() -> tuple:
    import huggingface_hub.constants as constants

    return (
        os.environ.get("HF_HUB_OFFLINE"),
        os.environ.get("HF_HUB_CACHE"),
        constants.HF_HUB_OFFLINE,
        constants.HF_HUB_CACHE,
    )


def test_hub_cache_scope_restores_everything_even_on_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    from hf_robustmed.demo import hub_cache_scope

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "mine"))
    before = _hub_state()
    with pytest.raises(RuntimeError), hub_cache_scope(tmp_path / "standins"):
        assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
        assert constants.HF_HUB_CACHE == os.environ["HF_HUB_CACHE"] == str((tmp_path / "standins").resolve())
        raise RuntimeError("boom")
    assert _hub_state() == before and "HF_HUB_OFFLINE" not in os.environ
    with hub_cache_scope(None):
        assert _hub_state() == before


@pytest.mark.slow
def test_run_demo_leaves_no_global_hub_state(tmp_path, monkeypatch):
    """After the demo (stand-ins seeded under the real repo ids), ``create_model("biomedclip")`` does not get the
    stand-in: environment and huggingface_hub settings are as before."""
    import huggingface_hub.constants as constants

    from hf_robustmed.demo import run_demo

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "user-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "user-cache"))
    environ = dict(os.environ)
    before = _hub_state()
    report = run_demo(tmp_path / "demo_out", models="standins", progress=False)
    assert dict(os.environ) == environ and _hub_state() == before
    text = report.read_text()
    assert "biomedclip-standin (stand-in)" in text or "Stand-in weights" in text
    card = (tmp_path / "demo_out" / "robustmedclip" / "README.md").read_text()
    assert STANDIN_KEY in card and "**Stand-in weights.**" in card
    assert stored_provenance("biomedclip")["weights"] == "unknown"  # the user's cache: not the demo's stand-in
