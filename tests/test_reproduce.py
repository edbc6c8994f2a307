"""``hf-robustmed reproduce`` end to end, offline: tiny sources in the real formats, stand-in models in their real
layouts (seeded in a local Hub cache under the real repo ids, or given with ``--models NAME=SPEC``), a run killed
with SIGKILL and resumed to the same outputs as an uninterrupted run, the paper's table and its provenance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import go_offline, require
from data_fixtures import write_medimeta, write_medmnist

from hf_robustmed.cli import main

require("peft")
require("open_clip")

# Four test images per dataset: some cells hold one class, so ROC-AUC and relative CE are undefined there (and say so).
pytestmark = pytest.mark.filterwarnings("ignore::hf_robustmed.metrics.UndefinedMetricWarning")
REPO = Path(__file__).resolve().parents[1]
PNEUMONIA = {0: "NORMAL", 1: "BACTERIA", 2: "VIRUS"}  # MedIMeta's label order (SPEC §1.2)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """Sources (one dataset per collection, 224 px) and the four baselines as stand-ins, offline."""
    import torch

    from hf_robustmed.models.unimedclip import HUB_FILE, HUB_REPO
    from hf_robustmed.testing import (
        BIOMEDCLIP_REPO,
        save_tiny_medclip,
        save_tiny_open_clip,
        seed_tiny_biomedclip,
        seed_tiny_unimedclip,
    )

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: thread start-up and contention would cost more than the work
    root = tmp_path_factory.mktemp("reproduce")
    (root / "sources" / "medmnist").mkdir(parents=True)
    write_medmnist(root / "sources" / "medmnist", "pneumoniamnist", rgb=False, classes=2, size=224, counts=(4, 6, 4))
    write_medimeta(root / "sources" / "medimeta", "pneumonia", "disease class", PNEUMONIA, rgb=False, n=12, size=224)
    with pytest.MonkeyPatch.context() as patch:
        cache = go_offline(patch, root / "hub")
        seed_tiny_biomedclip(cache, root / "work", image_size=224)
        seed_tiny_unimedclip(cache, root / "work")
        models = {
            "clip-vit-b16": f"local-dir:{save_tiny_open_clip(root / 'clip', image_size=224)}",
            "medclip-vit": f"medclip:{save_tiny_medclip(root / 'medclip', image_size=224)}",
            "biomedclip": f"hf-hub:{BIOMEDCLIP_REPO}",
            "unimedclip": f"unimedclip:{HUB_REPO}/{HUB_FILE}",
        }
        args = [
            "--source-root",
            str(root / "sources"),
            "--no-download",
            "--datasets",
            "pneumonia,pneumoniamnist",
            "--corruptions",
            "gaussian_noise,pixelate",
            "--severities",
            "1,3",
            "--models",
            ",".join(f"{name}={spec}" for name, spec in models.items()),
            "--fractions",
            "100",
            "--ranks",
            "4",
            "--epochs",
            "1",
            "--train-batch-size",
            "4",
            "--batch-size",
            "8",
            "--num-workers",
            "0",
        ]
        yield {"root": root, "cache": cache, "args": args, "env": dict(os.environ)}
    torch.set_num_threads(threads)


@pytest.fixture
def offline(kit, monkeypatch, fresh_accelerate_state):
    go_offline(monkeypatch, kit["cache"])
    return kit


def test_dry_run_of_the_full_study_plans_everything_and_fetches_nothing(tmp_path, offline):
    from hf_robustmed.reproduce import Study, count, describe, downloads

    study = Study(tmp_path / "out", source_root=tmp_path / "nothing-here")
    items = downloads(study)
    assert len(items) == 20  # 12 sources, 4 baselines' weights, 4 original checkpoints
    assert not any(i.present for i in items if not i.what.startswith("weights"))  # (stand-ins lie in the cache)
    text = describe(study, count(study), items, rates=None)
    assert "zenodo.org/records/10519652 octmnist_224.npz  [checksum: MD5 (MedMNIST INFO)]" in text
    assert "MediMeta-C: 7 datasets, 10,061 test images" in text  # SPEC §3.2
    assert "MedMNIST-C: 5 datasets, 5,601 test images, 45 (dataset, corruption) pairs" in text  # SPEC §3.1
    assert "robustmedclip-r16-f10: ≈ 3,532 images, 14 steps/epoch, 280 steps" in text  # SPEC §7.2
    assert "robustmedclip-r16-f100: ≈ 35,368 images, 139 steps/epoch, 2,780 steps" in text
    assert not (tmp_path / "out").exists() and not (tmp_path / "nothing-here").exists()


def test_dry_run_measures_this_machine(tmp_path, offline, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "-o", str(out), "--dry-run", "--measure-batches", "1", *offline["args"]]) == 0
    text = capsys.readouterr().out
    for line in (
        "source pneumonia",
        "present",
        "Image-evaluations",
        "robustmedclip-r4-f100",
        "images/s",
        "corruption engine:",
        "Estimated time on this hardware",
        "total: ≈",
    ):
        assert line in text
    assert "clip-vit-b16 as given by --models (its own architecture)" in text
    assert not out.exists()


def _outputs(out: Path) -> dict[str, bytes]:
    """The files a rerun must reproduce byte for byte (step records and logs hold times, the record paths)."""
    wanted = [
        "paper_table.md",
        "paper_table.csv",
        "results.csv",
        "adapters/robustmedclip-r4-f100/adapter_model.safetensors",
    ]
    wanted += [str(p.relative_to(out)) for p in sorted((out / "evaluation").rglob("cells/**/*.parquet"))]
    assert not [p for p in out.rglob(".*.tmp*") if p.is_file()]  # a killed run's temporaries are cleared
    return {name: (out / name).read_bytes() for name in wanted}


def _environment(kit: dict, **extra: str) -> dict[str, str]:
    return {
        **kit["env"],
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(kit["cache"]),
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


@pytest.mark.slow
def test_reproduce_end_to_end_killed_and_resumed(tmp_path, offline, capsys):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(["reproduce", "-o", str(whole), *offline["args"]]) == 0

    with open(tmp_path / "killed.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hf_robustmed.reproduce", "-o", str(killed), *offline["args"]],
            env=_environment(offline),
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 120
        while not list((killed / "evaluation").rglob("cells/**/*.parquet")):  # mid-evaluation
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "paper_table.md").exists()

    assert main(["reproduce", "-o", str(killed), *offline["args"]]) == 0
    assert _outputs(killed) == _outputs(whole)
    _check_table(whole)

    two = tmp_path / "two-processes"  # what `accelerate launch --num_processes 2` runs, on the CPU
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "hf_robustmed.reproduce",
        "-o",
        str(two),
        *offline["args"],
    ]
    done = subprocess.run(
        command, env=_environment(offline, ACCELERATE_USE_CPU="1"), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"processes": 2' in (two / "evaluation/rmc/MediMeta-C/biomedclip/summary.json").read_text()
    assert (two / "paper_table.csv").read_bytes() == (whole / "paper_table.csv").read_bytes()

    before = _outputs(whole)
    capsys.readouterr()
    assert main(["reproduce", "-o", str(whole), *offline["args"]]) == 0  # finished: every step is skipped
    assert _outputs(whole) == before
    steps = capsys.readouterr().out
    assert "train robustmedclip-r4-f100: already done, skipped" in steps
    assert "evaluate rmc/MedMNIST-C/biomedclip: already done, skipped" in steps


def _check_table(out: Path) -> None:
    table = pd.read_csv(out / "paper_table.csv")
    models = ["clip-vit-b16", "medclip-vit", "biomedclip", "unimedclip", "robustmedclip-r4-f100"]
    assert list(table.protocol) == ["standard"] * 5 + ["rmc"] * 5 and list(table.model) == models * 2
    for column in (
        "clean_err/MediMeta-C",
        "mce/MediMeta-C",
        "clean_err/MedMNIST-C",
        "mce/MedMNIST-C",
        "clean_err",
        "mce",
        "paper_clean_err",
        "paper_mce",
        "diff_clean_err",
        "diff_mce",
    ):
        assert column in table.columns
    assert (table[table.model == "clip-vit-b16"][["clean_err", "mce"]] == 100).all().all()  # the reference
    paper = dict(zip(table.model, zip(table.paper_clean_err, table.paper_mce, strict=True), strict=True))
    assert paper["biomedclip"] == (116.3, 126.8) and paper["robustmedclip-r4-f100"] == (62.8, 81.0)  # SPEC §9
    assert (table.diff_mce - (table.mce - table.paper_mce)).abs().max() < 1e-9

    # Stand-in provenance on every output.
    assert set(table.weights) == {"stand-in"}
    assert set(pd.read_parquet(out / "results.parquet").weights) == {"stand-in"}
    record = json.loads((out / "study.json").read_text())
    assert {m["weights"] for m in record["models"].values()} == {"stand-in"}
    assert record["seeds"] == {"corruptions": 0, "training": 42} and set(record["protocols"]) == {"standard", "rmc"}
    assert record["original_checkpoints"]["rmc-original-r4-f100"]["available"] is False  # offline: recorded, skipped
    markdown = (out / "paper_table.md").read_text()
    assert "**Stand-in weights**" in markdown and "**Not the paper's full study**" in markdown
    assert all(f"{m} (stand-in)" in markdown for m in models)
    assert "## What differs and why" in markdown and "D4" in markdown and "D15" in markdown
    assert "mCE mean of collections" in markdown
    for protocol in ("standard", "rmc"):
        report = out / f"report-{protocol}"
        assert (report / "radar_top1.png").is_file() and (report / "accuracy_vs_severity.png").is_file()
        assert "stand-in" in (report / "report.md").read_text()


def test_bad_studies_are_refused_with_a_clear_error(tmp_path, capsys):
    from hf_robustmed.reproduce import Study

    with pytest.raises(ValueError, match="unknown dataset"):
        Study(tmp_path, datasets=("imagenet",))
    with pytest.raises(ValueError, match="needs clip-vit-b16"):
        Study(tmp_path, baselines=("biomedclip",))
    code = main(
        [
            "reproduce",
            "-o",
            str(tmp_path / "out"),
            "--source-root",
            str(tmp_path / "empty"),
            "--no-download",
            "--datasets",
            "oct",
            "--no-train",
            "--originals",
            "none",
        ]
    )
    assert code == 2 and "info.yaml not found" in capsys.readouterr().err
