"""Zero-shot evaluation of tiny stand-in models on a tiny built benchmark, offline."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import require  # noqa: E402

torch = require("torch")
require("open_clip")
require("accelerate")

from data_fixtures import write_medmnist  # noqa: E402
from model_oracles import native_logits  # noqa: E402

from hf_robustmed.data import build_benchmark  # noqa: E402
from hf_robustmed.data.benchmarks import medmnist_c_jobs  # noqa: E402
from hf_robustmed.evaluation import evaluate, iter_images, plan_cells  # noqa: E402
from hf_robustmed.models import build_prompts  # noqa: E402
from hf_robustmed.testing import save_tiny_open_clip, save_tiny_transformers_clip  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    (root / "src").mkdir()
    write_medmnist(root / "src", "pneumoniamnist", rgb=False, classes=2, counts=(3, 3, 7), seed=8)
    write_medmnist(root / "src", "bloodmnist", rgb=True, classes=8, counts=(3, 3, 5), seed=9)
    jobs = medmnist_c_jobs(
        root / "src",
        datasets=["pneumoniamnist", "bloodmnist"],
        corruptions=["pixelate", "jpeg_compression"],
        severities=(1, 5),
        size=28,
    )
    build_benchmark(jobs, root / "bench", shard_rows=4, progress=False)
    models = [
        f"local-dir:{save_tiny_open_clip(root / 'oc')}",
        f"transformers:{save_tiny_transformers_clip(root / 'tf')}",
    ]
    return root, models


def test_results_match_a_direct_computation(setup):
    root, models = setup
    results = evaluate(models, str(root / "bench"), root / "out", batch_size=3)
    assert set(results.columns) == {"model", "dataset", "corruption", "severity", "metric", "value", "n", "weights"}
    assert set(results.weights) == {"stand-in"}  # the tiny models carry the stand-in marker
    cells = plan_cells(root / "bench")
    assert len(results) == len(models) * len(cells) * 3  # accuracy, balanced accuracy, ROC-AUC per cell
    for spec in models:  # against the family's own library (tests/model_oracles.py), not the zoo
        for cell in cells:
            class_names = ["normal", "pneumonia"] if cell.dataset == "pneumoniamnist" else None
            images, labels = [], []
            for batch, batch_labels, _ in iter_images(root / "bench", cell, 100):
                images += batch
                labels += batch_labels.tolist()
            names = class_names or [
                "basophil",
                "eosinophil",
                "erythroblast",
                "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
                "lymphocyte",
                "monocyte",
                "neutrophil",
                "platelet",
            ]
            logits = native_logits(spec, images, [row[0] for row in build_prompts(names, cell.dataset)])
            expected = float(np.mean(logits.argmax(1).numpy() == np.asarray(labels)))
            row = results[
                (results.model == spec)
                & (results.dataset == cell.dataset)
                & (results.corruption == cell.corruption)
                & (results.severity == cell.severity)
                & (results.metric == "accuracy")
            ]
            assert row.value.item() == pytest.approx(expected) and row.n.item() == len(labels)
    stored = pd.read_parquet(root / "out" / "results.parquet")
    pd.testing.assert_frame_equal(stored, results)
    assert (root / "out" / "summary.json").exists()


def test_finished_cells_are_not_recomputed(setup, monkeypatch):
    root, models = setup
    evaluate(models[:1], str(root / "bench"), root / "resume", batch_size=4)
    from hf_robustmed import evaluation

    calls = []
    monkeypatch.setattr(evaluation.Evaluator, "_evaluate", lambda self, *a: calls.append(a))
    again = evaluate(models[:1], str(root / "bench"), root / "resume", batch_size=4)
    assert calls == [] and len(again) > 0


def test_selection_and_errors(setup):
    root, _ = setup
    cells = plan_cells(root / "bench", datasets=["bloodmnist"], corruptions=["pixelate"], severities=[5])
    assert [(c.corruption, c.severity) for c in cells] == [("clean", 0), ("pixelate", 5)]
    with pytest.raises(ValueError, match="not in"):
        plan_cells(root / "bench", datasets=["octmnist"])
    with pytest.raises(ValueError, match="corruption 'zoom_blur' is not in"):
        plan_cells(root / "bench", corruptions=["zoom_blur"])
    with pytest.raises(ValueError, match="severity must be in 1..5"):
        plan_cells(root / "bench", severities=[7])
    with pytest.raises(ValueError, match="no validation configs"):
        plan_cells(root / "bench", split="validation")


def test_cli_and_two_processes_give_identical_results(setup, tmp_path):
    import subprocess
    import sys

    from hf_robustmed.cli import main

    root, models = setup
    args = ["--models", models[0], "--benchmark", str(root / "bench"), "--batch-size", "3"]
    assert main(["evaluate", *args, "-o", str(tmp_path / "one")]) == 0
    # `accelerate launch --cpu` always runs one process; torchrun with ACCELERATE_USE_CPU gives a 2-process gloo group
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*launch, "-m", "hf_robustmed.evaluation", *args, "-o", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("one", "two")]
    assert [s["processes"] for s in summaries] == [1, 2]
    one = pd.read_parquet(tmp_path / "one" / "results.parquet")
    two = pd.read_parquet(tmp_path / "two" / "results.parquet")
    pd.testing.assert_frame_equal(one, two)
    for cell in (tmp_path / "one" / "cells").rglob("*.parquet"):
        a, b = pd.read_parquet(cell), pd.read_parquet(tmp_path / "two" / cell.relative_to(tmp_path / "one"))
        assert a["index"].tolist() == b["index"].tolist() and a["pred"].tolist() == b["pred"].tolist()
        np.testing.assert_allclose(np.stack(a["probs"]), np.stack(b["probs"]), rtol=1e-5, atol=1e-6)


EVAL_SCRIPT = """
import sys, time
from hf_robustmed import evaluation
original = evaluation.Evaluator._write_cell
def slow_write(self, *args):  # a slower cell, so that the kill lands between cells
    time.sleep(0.3)
    original(self, *args)
evaluation.Evaluator._write_cell = slow_write
evaluation.evaluate([sys.argv[1]], sys.argv[2], sys.argv[3], batch_size=4)
"""


def test_killed_evaluation_resumes_to_the_same_results(setup, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    root, models = setup
    reference = evaluate(models[:1], str(root / "bench"), tmp_path / "reference", batch_size=4)
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-c", EVAL_SCRIPT, models[0], str(root / "bench"), str(out)])
    deadline = time.time() + 120
    while len(list(out.glob("cells/*/*/*.parquet"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(list(out.glob("cells/*/*/*.parquet")))
    assert 0 < done < len(plan_cells(root / "bench")), "the kill should land mid-run"
    assert not (out / "results.parquet").exists()
    resumed = evaluate(models[:1], str(root / "bench"), out, batch_size=4)
    pd.testing.assert_frame_equal(resumed, reference)


def test_every_family_runs_through_the_evaluation(setup, tmp_path, monkeypatch):
    """MedCLIP, BiomedCLIP (Hub cache), UniMed-CLIP (fork checkpoint) and a PEFT adapter, each by its real loader."""
    from conftest import seed_hub_families

    from hf_robustmed.testing import save_tiny_medclip

    root, _ = setup
    adapter = seed_hub_families(monkeypatch, tmp_path)
    models = [f"medclip:{save_tiny_medclip(tmp_path / 'medclip')}", "biomedclip", "unimedclip", f"peft:{adapter}"]
    results = evaluate(models, str(root / "bench"), tmp_path / "out", datasets=["pneumoniamnist"], batch_size=4)
    accuracy = results[results.metric == "accuracy"]
    assert set(accuracy.model) == set(models) and (accuracy.n == 7).all()
    cells = {
        m: pd.read_parquet(
            next((tmp_path / "out" / "cells").glob(f"{m.split(':')[0]}*/pneumoniamnist-clean/test.parquet"))
        )
        for m in ("biomedclip", "peft")
    }
    assert not np.allclose(np.stack(cells["peft"].probs), np.stack(cells["biomedclip"].probs))  # the adapter acts
