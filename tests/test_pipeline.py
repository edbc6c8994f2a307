"""The evaluation's input pipeline: loader workers, corruptions on the fly, fingerprinted cells, planned downloads."""

import fnmatch
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import require  # noqa: E402

torch = require("torch")
require("open_clip")
require("accelerate")

from data_fixtures import write_medimeta, write_medmnist  # noqa: E402

from hf_robustmed.data import build_benchmark  # noqa: E402
from hf_robustmed.data.benchmarks import medimeta_c_jobs, medmnist_c_jobs  # noqa: E402
from hf_robustmed.data.loader import batch_items, images_tensor, make_loader, share  # noqa: E402
from hf_robustmed.data.reader import CorruptedGroup, ShardRows  # noqa: E402
from hf_robustmed.evaluation import Evaluator, evaluate, plan_cells, resolve_benchmark  # noqa: E402
from hf_robustmed.testing import save_tiny_open_clip  # noqa: E402


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    """Every corruption of two MedMNIST-C datasets (RGB, grey) and of the MediMeta-C suite (grey and RGB
    sources stored as RGB), tiny."""
    root = tmp_path_factory.mktemp("pipeline")
    (root / "src").mkdir()
    write_medmnist(root / "src", "dermamnist", rgb=True, classes=7, counts=(2, 2, 5), seed=3)
    write_medmnist(root / "src", "pneumoniamnist", rgb=False, classes=2, counts=(2, 2, 5), seed=4)
    jobs = medmnist_c_jobs(root / "src", datasets=["dermamnist", "pneumoniamnist"], size=28)
    build_benchmark(jobs, root / "medmnist-c", shard_rows=2, seed=7, progress=False, num_workers=0)
    write_medimeta(
        root / "meta", "oct", "disease class", {0: "CNV", 1: "DME", 2: "DRUSEN", 3: "NORMAL"}, rgb=False, n=9
    )
    write_medimeta(root / "meta", "pbc", "cell class", {i: f"cell {i}" for i in range(8)}, rgb=True, n=9, seed=2)
    jobs = medimeta_c_jobs(root / "meta", datasets=["oct", "pbc"], splits=("test",))
    build_benchmark(jobs, root / "medimeta-c", shard_rows=2, seed=5, grey="rgb", progress=False)
    model = f"local-dir:{save_tiny_open_clip(root / 'oc', image_size=32)}"
    return root, model


@pytest.mark.parametrize("name", ["medmnist-c", "medimeta-c"])
def test_on_the_fly_images_are_byte_identical_to_the_stored_configs(benches, tmp_path, name):
    root, _ = benches
    folder = root / name
    evaluator = Evaluator(folder, tmp_path / "out", on_the_fly=True)
    cells = plan_cells(folder)
    corrupted = [cell for cell in cells if cell.corruption != "clean"]
    manifest = json.loads((folder / "benchmark.json").read_text())
    expected = sum(len(info["corruptions"]) * 5 for info in manifest["datasets"].values())
    assert len(corrupted) == expected > 60
    for cell in corrupted:
        fly, stored = evaluator.rows(cell), ShardRows(folder, cell.config, cell.split)
        a, b = fly.read(0, len(fly)), stored.read(0, len(stored))
        assert len(a.images) == len(b.images) > 0
        for x, y in zip(a.images, b.images, strict=True):
            assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape, cell
            assert np.array_equal(x, y), f"{cell.config}: on-the-fly pixels differ from the stored ones"
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.indices, b.indices)


def test_on_the_fly_results_equal_stored_results(benches, tmp_path):
    root, model = benches
    kwargs = dict(corruptions=["zoom_blur", "gaussian_noise", "pixelate"], batch_size=3, num_workers=0)
    stored = evaluate([model], str(root / "medmnist-c"), tmp_path / "stored", **kwargs)
    fly = evaluate([model], str(root / "medmnist-c"), tmp_path / "fly", on_the_fly=True, **kwargs)
    pd.testing.assert_frame_equal(stored, fly)
    for cell in (tmp_path / "stored" / "cells").rglob("*.parquet"):
        a, b = pd.read_parquet(cell), pd.read_parquet(tmp_path / "fly" / cell.relative_to(tmp_path / "stored"))
        np.testing.assert_array_equal(np.stack(a.probs), np.stack(b.probs))
    summary = json.loads((tmp_path / "fly" / "summary.json").read_text())
    assert summary["pipeline"]["on_the_fly"] is True


def test_worker_count_and_batch_size_do_not_change_results(benches, tmp_path):
    root, model = benches
    runs = {}
    for workers, batch in ((0, 4), (2, 3), (1, 100)):
        out = tmp_path / f"w{workers}b{batch}"
        runs[out] = evaluate(
            [model], str(root / "medimeta-c"), out, batch_size=batch, num_workers=workers, on_the_fly=workers == 2
        )
    first, *others = runs
    for out in others:
        pd.testing.assert_frame_equal(runs[first], runs[out])
        for cell in (first / "cells").rglob("*.parquet"):
            a, b = pd.read_parquet(cell), pd.read_parquet(out / cell.relative_to(first))
            assert a["index"].tolist() == b["index"].tolist()
            np.testing.assert_allclose(np.stack(a.probs), np.stack(b.probs), rtol=1e-5, atol=1e-6)


def test_loader_keeps_order_and_shares_cover_every_row_once(benches):
    root, _ = benches
    rows = ShardRows(root / "medimeta-c", "oct-clean", "test")
    for world in (1, 2, 3, 5):
        covered = [i for r in range(world) for i in range(*share(len(rows), r, world))]
        assert covered == list(range(len(rows)))
    items = batch_items(0, 0, len(rows), 2) + batch_items(1, 1, len(rows), 1)
    loader = make_loader([rows, rows], items, num_workers=2)
    got = [(b["item"], b["indices"].tolist()) for b in loader]
    assert [i for i, _ in got] == list(range(len(items)))
    expected = rows.read(0, len(rows)).indices.tolist()
    assert [i for _, idx in got[: len(batch_items(0, 0, len(rows), 2))] for i in idx] == expected


def _same_images(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    return a.shape == b.shape and torch.equal(a, b)


@pytest.mark.parametrize("name", ["medmnist-c", "medimeta-c"])
def test_channels_first_reads_are_the_same_images(benches, tmp_path, name):
    """Stored and on-the-fly rows read channels-first (decoded or corrupted straight into planes) make the same
    uint8 batches as the ``H×W×3`` reads."""
    folder = benches[0] / name
    evaluator = Evaluator(folder, tmp_path / "out", on_the_fly=True)
    for cell in plan_cells(folder):
        for rows in (evaluator.rows(cell), ShardRows(folder, cell.config, cell.split)):
            hwc, planes = rows.read(0, len(rows)), rows.read(0, len(rows), channels_first=True)
            assert hwc.channels_first is False
            same = _same_images(
                images_tensor(hwc.images), images_tensor(planes.images, channels_first=planes.channels_first)
            )
            assert same, cell.config
            assert np.array_equal(hwc.labels, planes.labels) and np.array_equal(hwc.indices, planes.indices)


def test_cells_of_one_clean_split_are_read_as_a_group(benches, tmp_path, monkeypatch):
    """On the fly, consecutive cells of one dataset are read as a group: each clean PNG is decoded once per row
    range for all of them, each member's images are its own reads', and the cells equal those evaluated alone."""
    from hf_robustmed.data import reader

    root, model = benches
    folder = root / "medmnist-c"
    planned = plan_cells(folder, datasets=["dermamnist"], corruptions=["pixelate", "brightness_up"])
    cells = [c for c in planned if c.corruption == "pixelate" or (c.corruption, c.severity) == ("brightness_up", 3)]
    assert len(cells) == 6
    grouped = Evaluator(folder, tmp_path / "group", batch_size=12, num_workers=0, on_the_fly=True)
    cache: dict = {}
    group = CorruptedGroup([grouped.rows(cell, cache) for cell in cells])
    for channels_first in (False, True):
        batch = group.read(1, 4, channels_first=channels_first)
        alone = [m.read(1, 4, channels_first=channels_first) for m in group.members]
        together = images_tensor(batch.images, channels_first=channels_first)
        assert _same_images(
            together, images_tensor([x for b in alone for x in b.images], channels_first=channels_first)
        )
        assert np.array_equal(batch.indices, alone[0].indices) and np.array_equal(batch.labels, alone[0].labels)

    decoded = []
    decode = reader.decode_png
    monkeypatch.setattr(reader, "decode_png", lambda *args, **kwargs: decoded.append(1) or decode(*args, **kwargs))
    grouped.run([model], cells)
    assert len(decoded) == len(group) == 5  # batches of 2 rows × 6 cells, each row decoded once
    monkeypatch.undo()
    for cell in cells:
        single = Evaluator(folder, tmp_path / cell.config, batch_size=2, num_workers=0, on_the_fly=True)
        single.run([model], [cell])
        pd.testing.assert_frame_equal(
            pd.read_parquet(grouped.cell_path(model, cell)), pd.read_parquet(single.cell_path(model, cell))
        )


def test_images_tensor_shapes():
    grey, rgb = np.zeros((4, 5), np.uint8), np.ones((4, 5, 3), np.uint8)
    assert images_tensor([grey, grey]).shape == (2, 1, 4, 5)
    assert images_tensor([rgb, rgb]).shape == (2, 3, 4, 5)
    mixed = images_tensor([grey, rgb])  # grey replicated to RGB, as PIL's convert("RGB")
    assert mixed.shape == (2, 3, 4, 5) and mixed.dtype == torch.uint8
    sizes = images_tensor([grey, np.zeros((6, 7), np.uint8)])
    assert isinstance(sizes, list) and [t.shape for t in sizes] == [(1, 4, 5), (1, 6, 7)]
    planes = rgb.transpose(2, 0, 1).copy()  # channels first: the same tensors
    assert torch.equal(images_tensor([grey, planes], channels_first=True), mixed)
    assert torch.equal(images_tensor(np.stack([planes, planes]), channels_first=True), images_tensor([rgb, rgb]))


def _cell_times(out: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("*.parquet")}


def test_changed_inputs_are_recomputed_never_reused(benches, tmp_path):
    root, _ = benches
    bench = str(root / "medmnist-c")
    weights = tmp_path / "model"
    model = f"local-dir:{save_tiny_open_clip(weights, image_size=32, seed=0)}"
    kwargs = dict(datasets=["pneumoniamnist"], corruptions=["pixelate"], severities=[1, 5], batch_size=4, num_workers=0)
    out = tmp_path / "out"
    first = evaluate([model], bench, out, **kwargs)
    times = _cell_times(out)
    assert len(times) == 3
    again = evaluate([model], bench, out, **kwargs)
    assert _cell_times(out) == times  # same inputs: served from the cells
    pd.testing.assert_frame_equal(first, again)

    templates = ["an image of {c}", "a {d} scan showing {c}"]
    changed = evaluate([model], bench, out, templates=templates, **kwargs)
    fresh = evaluate([model], bench, tmp_path / "fresh-templates", templates=templates, **kwargs)
    pd.testing.assert_frame_equal(changed, fresh)
    assert all(_cell_times(out)[p] != t for p, t in times.items())
    record = json.loads(pq.read_schema(next(iter(times))).metadata[b"hf_robustmed.inputs"])
    assert record["templates"] == templates and record["images"]["config"]

    save_tiny_open_clip(weights, image_size=32, seed=1)  # retrained at the same path
    retrained = evaluate([model], bench, out, templates=templates, **kwargs)
    fresh = evaluate([model], bench, tmp_path / "fresh-weights", templates=templates, **kwargs)
    pd.testing.assert_frame_equal(retrained, fresh)
    probs = lambda folder: np.stack(pd.read_parquet(next((folder / "cells").rglob("*clean/test.parquet"))).probs)  # noqa: E731
    assert not np.allclose(probs(out), probs(tmp_path / "fresh-templates"))


def test_another_benchmark_build_is_recomputed(benches, tmp_path):
    root, model = benches
    bench = tmp_path / "bench"
    shutil.copytree(root / "medmnist-c", bench)
    kwargs = dict(datasets=["pneumoniamnist"], corruptions=["pixelate"], severities=[1], batch_size=4, num_workers=0)
    evaluate([model], str(bench), tmp_path / "out", **kwargs)
    times = _cell_times(tmp_path / "out")
    manifest = json.loads((bench / "benchmark.json").read_text())
    manifest["settings"]["seed"] = 99  # as if rebuilt with other settings
    (bench / "benchmark.json").write_text(json.dumps(manifest))
    evaluate([model], str(bench), tmp_path / "out", **kwargs)
    assert all(_cell_times(tmp_path / "out")[p] != t for p, t in times.items())


def test_mistyped_benchmark_path_is_one_clear_error_and_leaves_nothing(benches, tmp_path, monkeypatch):
    root, model = benches
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo_out").mkdir()
    for wrong in ("demo_out/nosuch", "./nosuch", str(tmp_path / "a" / "b" / "c")):
        with pytest.raises(ValueError, match="no benchmark folder"):
            evaluate([model], wrong, tmp_path / "results")
    with pytest.raises(ValueError, match="not a benchmark folder"):
        evaluate([model], str(tmp_path / "demo_out"), tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_unfinished_benchmark_is_refused(benches, tmp_path):
    root, model = benches
    bench = tmp_path / "bench"
    shutil.copytree(root / "medmnist-c", bench)
    manifest = json.loads((bench / "benchmark.json").read_text())
    (bench / "benchmark.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(ValueError, match="incomplete"):
        evaluate([model], str(bench), tmp_path / "results")


def test_only_planned_configs_are_downloaded(benches, tmp_path, monkeypatch):
    """A Hub benchmark: only the card, the manifest and the planned configs (only -clean ones on the fly)."""
    import huggingface_hub

    root, model = benches
    requested = []

    def snapshot_download(repo_id, repo_type, allow_patterns):  # a Hub holding the benchmark, honouring patterns
        assert (repo_id, repo_type) == ("org/MedMNIST-C", "dataset")
        requested.append(list(allow_patterns))
        snapshot = tmp_path / "snapshot"
        for file in (root / "medmnist-c").rglob("*"):
            relative = file.relative_to(root / "medmnist-c").as_posix()
            if file.is_file() and any(fnmatch.fnmatch(relative, p) for p in allow_patterns):
                (snapshot / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file, snapshot / relative)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.chdir(tmp_path)
    evaluate(
        [model],
        "org/MedMNIST-C",
        tmp_path / "out",
        datasets=["dermamnist"],
        corruptions=["pixelate"],
        severities=[2],
        num_workers=0,
        on_the_fly=True,
    )
    assert requested[-1] == ["README.md", "benchmark.json", "dermamnist-clean/*"]
    assert sorted(p.name for p in (tmp_path / "snapshot").iterdir()) == [
        "README.md",
        "benchmark.json",
        "dermamnist-clean",
    ]
    evaluate(
        [model],
        "org/MedMNIST-C",
        tmp_path / "out2",
        datasets=["dermamnist"],
        corruptions=["pixelate"],
        severities=[2],
        num_workers=0,
    )
    assert requested[-1] == ["README.md", "benchmark.json", "dermamnist-clean/*", "dermamnist-pixelate-2/*"]
    assert resolve_benchmark(str(root / "medmnist-c")) == root / "medmnist-c"


@pytest.mark.parametrize("name", ["medmnist-c", "medimeta-c"])
def test_sources_evaluated_on_the_fly_equal_the_built_benchmark(benches, tmp_path, name):
    """``evaluate --source``: clean MedMNIST npz / MedIMeta folders (read in loader workers in other processes),
    nothing built, the same numbers."""
    from hf_robustmed.cli import main

    root, model = benches
    source, seed, datasets, size = {
        "medmnist-c": ("src", "7", "pneumoniamnist", ["--size", "28"]),
        "medimeta-c": ("meta", "5", "oct,pbc", []),
    }[name]
    selection = ["--datasets", datasets, "--corruptions", "gaussian_noise,pixelate", "--severities", "2,4"]
    assert (
        main(
            [
                "evaluate",
                "--models",
                model,
                "--source",
                name,
                "--source-root",
                str(root / source),
                *size,
                "--seed",
                seed,
                *selection,
                "-o",
                str(tmp_path / "fly"),
                "--num-workers",
                "2",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--models",
                model,
                "--benchmark",
                str(root / name),
                *selection,
                "-o",
                str(tmp_path / "stored"),
                "--num-workers",
                "0",
            ]
        )
        == 0
    )
    keys = ["dataset", "corruption", "severity", "metric"]  # the cells' order follows each benchmark's config order
    fly, stored = (
        pd.read_parquet(tmp_path / run / "results.parquet").sort_values(keys, ignore_index=True)
        for run in ("fly", "stored")
    )
    assert len(fly) == len(stored) == 3 * len(datasets.split(",")) * (1 + 2 * 2)
    pd.testing.assert_frame_equal(fly, stored)
    assert not (tmp_path / "fly" / "benchmark.json").exists()


def test_interrupted_build_is_named_as_such(benches, tmp_path):
    root, model = benches
    bench = tmp_path / "bench"
    (bench / ".staging").mkdir(parents=True)
    with pytest.raises(ValueError, match="unfinished"):
        evaluate([model], str(bench), tmp_path / "results")


WORKERS_AFTER_THREADS = """
import sys
import cv2
import numpy as np
from hf_robustmed.evaluation import evaluate
cv2.setNumThreads(4)  # the caller's OpenCV thread pool is running when the loader starts its workers
image = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3), np.uint8)
for _ in range(10):
    cv2.GaussianBlur(image, (31, 31), 5)
# no __main__ guard: workers must not re-run this script
evaluate([sys.argv[1]], sys.argv[2], sys.argv[3], num_workers=2, on_the_fly=True, corruptions=["pixelate"])
print("done")
"""


def test_loader_workers_start_safely_from_any_script(benches, tmp_path):
    """Workers start from a script without a ``__main__`` guard, after the caller ran OpenCV's thread pool (a
    worker forked while that pool runs deadlocked in OpenCV)."""
    import subprocess
    import sys

    root, model = benches
    script = tmp_path / "evaluate_script.py"  # a script file, run as users do
    script.write_text(WORKERS_AFTER_THREADS)
    done = subprocess.run(
        [sys.executable, str(script), model, str(root / "medmnist-c"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("done"), done.stderr[-2000:]
