"""The build manifest as one type (the builder writes it, every reader reads it); the registry of named benchmarks."""

import json

import numpy as np
import pytest
from data_fixtures import write_medmnist

from hf_robustmed.adaptation.data import read_clean_rows
from hf_robustmed.data import build_benchmark
from hf_robustmed.data.benchmarks import (
    BENCHMARKS,
    BenchmarkDefinition,
    benchmark_jobs,
    medmnist_c_jobs,
    register_benchmark,
)
from hf_robustmed.data.builder import build_fingerprint
from hf_robustmed.data.manifest import MANIFEST, STAGING, BenchmarkManifest, build_state
from hf_robustmed.data.reader import ShardRows


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small MedMNIST-C build: bloodmnist (RGB) and pneumoniamnist (grey), test and validation splits."""
    root = tmp_path_factory.mktemp("manifest")
    write_medmnist(root, "bloodmnist", rgb=True, classes=8, seed=1)
    write_medmnist(root, "pneumoniamnist", rgb=False, classes=2, seed=2)
    jobs = medmnist_c_jobs(
        root,
        datasets=["bloodmnist", "pneumoniamnist"],
        corruptions=["pixelate"],
        severities=(2,),
        splits=("test", "validation"),
        size=28,
    )
    build_benchmark(jobs, root / "out", name="MedMNIST-C", shard_rows=2, progress=False)
    return root / "out"


def _copy(built, tmp_path):
    import shutil

    return shutil.copytree(built, tmp_path / "bench")


def test_the_manifest_reads_what_the_builder_wrote_and_writes_the_same_bytes(built, tmp_path):
    text = (built / MANIFEST).read_text()
    manifest = BenchmarkManifest.read(built)
    assert manifest.name == "MedMNIST-C" and manifest.complete
    assert manifest.fingerprint == build_fingerprint(built) and len(manifest.fingerprint) == 64
    assert manifest.settings.seed == 0 and manifest.settings.grey == "native" and manifest.settings.shard_rows == 2
    blood, pneumonia = manifest.datasets["bloodmnist"], manifest.datasets["pneumoniamnist"]
    assert (blood.rgb, blood.source_rgb, pneumonia.rgb, pneumonia.source_rgb) == (True, True, False, False)
    assert blood.splits == {"test": 5, "validation": 4} and blood.corruptions == ("pixelate",)
    assert blood.suite == "medmnist-c/bloodmnist" and len(blood.class_names) == 8
    assert manifest.configs["pneumoniamnist-pixelate-2"] == {"test": 5, "validation": 4}
    assert [s["split"] for s in manifest.settings.sources] == ["test", "validation", "test", "validation"]
    assert json.dumps(manifest.to_dict(), indent=1) == text  # the builder's bytes, key order included
    assert manifest.write(tmp_path / MANIFEST).read_text() == text


def test_an_old_manifest_still_loads_without_the_fields_it_lacks(built, tmp_path):
    """A build made before fingerprints and source channels were recorded."""
    bench = _copy(built, tmp_path)
    data = json.loads((bench / MANIFEST).read_text())
    del data["fingerprint"], data["settings"]["sources"]
    for info in data["datasets"].values():
        del info["source_rgb"]
    (bench / MANIFEST).write_text(json.dumps(data, indent=1))
    manifest = BenchmarkManifest.read(bench)
    assert manifest.fingerprint is None and manifest.settings.sources is None
    assert manifest.datasets["bloodmnist"].source_rgb is None
    assert manifest.to_dict() == data  # nothing is invented for the missing fields
    with pytest.raises(ValueError, match="older hf-robustmed without a build fingerprint"):
        build_fingerprint(bench)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text[: len(text) // 2], r"benchmark\.json is not valid JSON .*rebuild it"),
        (lambda text: "[]", r"not a benchmark manifest hf-robustmed can read \(the manifest is a list"),
        (lambda text: _edit(text, lambda d: d.pop("datasets")), r"the manifest has no 'datasets'"),
        (
            lambda text: _edit(text, lambda d: d["settings"].update(seed="0")),
            r"settings\['seed'\] is '0', not an integer",
        ),
        (
            lambda text: _edit(text, lambda d: d["datasets"]["bloodmnist"].pop("class_names")),
            r"datasets\['bloodmnist'\] has no 'class_names'",
        ),
        (
            lambda text: _edit(text, lambda d: d["configs"]["bloodmnist-clean"].update(test=-1)),
            r"configs\['bloodmnist-clean'\]\['test'\] is -1, not a row count",
        ),
    ],
)
def test_a_damaged_manifest_is_one_clear_error(built, tmp_path, damage, message):
    bench = _copy(built, tmp_path)
    (bench / MANIFEST).write_text(damage((bench / MANIFEST).read_text()))
    with pytest.raises(ValueError, match=message) as caught:
        BenchmarkManifest.read(bench)
    assert str(bench / MANIFEST) in str(caught.value)


def _edit(text: str, change) -> str:
    data = json.loads(text)
    change(data)
    return json.dumps(data)


def test_a_folder_without_a_finished_manifest_is_named_with_what_to_do(built, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty is not a benchmark folder.*build one with `hf-robustmed build`"):
        BenchmarkManifest.read(empty)
    assert build_state(empty) == "none"
    (empty / STAGING).mkdir()
    with pytest.raises(ValueError, match="only an unfinished build .*rerun the build to complete it"):
        BenchmarkManifest.read(empty)
    assert build_state(empty) == "unfinished"
    with pytest.raises(ValueError, match="no benchmark folder"):
        BenchmarkManifest.read(tmp_path / "nosuch")
    bench = _copy(built, tmp_path)
    assert build_state(bench) == "complete"
    (bench / MANIFEST).write_text((bench / MANIFEST).read_text().replace('"complete": true', '"complete": false'))
    with pytest.raises(ValueError, match="is incomplete .*rerun the build"):
        BenchmarkManifest.read(bench)
    assert not BenchmarkManifest.read(bench, complete=False).complete and build_state(bench) == "unfinished"


def test_the_builder_names_a_damaged_manifest_in_its_output_folder(built, tmp_path):
    bench = _copy(built, tmp_path)
    (bench / MANIFEST).write_text("{")
    jobs = medmnist_c_jobs(built.parent, datasets=["bloodmnist"], corruptions=["pixelate"], severities=(2,), size=28)
    with pytest.raises(ValueError, match=r"not valid JSON .*delete .*bench to build afresh"):
        build_benchmark(jobs, bench, progress=False, overwrite=True)


def test_the_clean_rows_for_training_are_the_readers_rows_still_encoded(built):
    from hf_robustmed.data.reader import decode_png

    rows = read_clean_rows(built, "bloodmnist", ["c"] * 8, "validation")
    stored = ShardRows(built, "bloodmnist-clean", "validation").read(0, 4)
    assert all(isinstance(image, bytes) for image in rows.images) and len(rows.images) == 4
    np.testing.assert_array_equal(np.stack([decode_png(image) for image in rows.images]), stored.images)
    np.testing.assert_array_equal(rows.labels, stored.labels)
    np.testing.assert_array_equal(rows.indices, stored.indices)
    with pytest.raises(ValueError, match="no train shards .*build the benchmark with the 'train' split"):
        read_clean_rows(built, "bloodmnist", ["c"] * 8, "train")


# ------------------------------------------------------------------------------------------ named benchmarks


def test_benchmark_jobs_gives_each_benchmark_its_options(tmp_path):
    write_medmnist(tmp_path, "bloodmnist", rgb=True, classes=8, seed=1)
    planned = benchmark_jobs("medmnist-c", tmp_path, datasets=["bloodmnist"], corruptions=["pixelate"], size=28)
    assert (planned.name, planned.grey) == ("MedMNIST-C", "native")
    assert [(j.source.dataset, j.source.split, j.corruptions) for j in planned.jobs] == [
        ("bloodmnist", "test", ("pixelate",))
    ]
    renamed = benchmark_jobs(
        "medmnist-c", tmp_path, datasets=["bloodmnist"], splits=["validation"], size=28, name="Mine", grey="rgb"
    )
    assert (renamed.name, renamed.grey, renamed.jobs[0].source.split) == ("Mine", "rgb", "validation")
    with pytest.raises(ValueError, match="unknown benchmark 'nope'; valid: medmnist-c, medimeta-c"):
        benchmark_jobs("nope", tmp_path)
    with pytest.raises(ValueError, match="importing a release needs --clean-root"):
        benchmark_jobs("medmnist-c-release", tmp_path, datasets=["bloodmnist"])
    with pytest.raises(ValueError, match="only the test split"):
        benchmark_jobs("medmnist-c-release", tmp_path, clean_root=tmp_path, datasets=["bloodmnist"], splits=["val"])


def test_the_size_hint_comes_with_the_library_call(tmp_path):
    write_medmnist(tmp_path, "bloodmnist", rgb=True, classes=8, seed=1)  # bloodmnist.npz: 28 px only
    with pytest.raises(ValueError, match=r"bloodmnist_224\.npz not found.*28 px \(bloodmnist\.npz\); pass --size 28"):
        medmnist_c_jobs(tmp_path, datasets=["bloodmnist"])
    with pytest.raises(ValueError) as caught:
        medmnist_c_jobs(tmp_path / "nothing", datasets=["bloodmnist"])
    assert "--size" not in str(caught.value)


def test_a_registered_benchmark_is_built_by_name(tmp_path):
    write_medmnist(tmp_path, "pneumoniamnist", rgb=False, classes=2, seed=2)

    def pneumonia_jobs(root, *, severities=(1, 2, 3, 4, 5)):  # takes only the options it names
        return medmnist_c_jobs(
            root, datasets=["pneumoniamnist"], corruptions=["pixelate"], severities=severities, size=28
        )

    register_benchmark("pneumonia-c", BenchmarkDefinition("Pneumonia-C", pneumonia_jobs, "rgb", "a test benchmark"))
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_benchmark("pneumonia-c", BENCHMARKS["medmnist-c"])
        planned = benchmark_jobs("pneumonia-c", tmp_path, severities=[3], size=64, datasets=["ignored"])
        assert (planned.name, planned.grey, planned.jobs[0].severities) == ("Pneumonia-C", "rgb", (3,))
    finally:
        del BENCHMARKS["pneumonia-c"]
