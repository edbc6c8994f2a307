"""Hub resolution in one place (:mod:`hf_robustmed.hub`), shared by the evaluation and the training."""

import json

import pytest

from hf_robustmed import hub
from hf_robustmed.data.manifest import MANIFEST, STAGING


def _manifest_only(folder):
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text(json.dumps({"complete": True}))
    return folder


def test_local_folders_resolve_to_themselves_or_name_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench = _manifest_only(tmp_path / "bench")
    assert hub.resolve_benchmark(str(bench)) == bench
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="plain is not a benchmark folder.*build one with `hf-robustmed build`"):
        hub.resolve_benchmark("plain")
    (tmp_path / "plain" / STAGING).mkdir()
    with pytest.raises(ValueError, match="unfinished build .*rerun the build"):
        hub.resolve_benchmark("plain")
    for path in ("./nosuch", "plain/nosuch", "a/b/c"):
        with pytest.raises(ValueError, match="no benchmark folder .*not a Hub repo id ORG/NAME"):
            hub.resolve_benchmark(path)


def test_a_repo_id_downloads_only_the_card_manifest_and_configs(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, repo_type, allow_patterns):
        calls.append((repo_id, repo_type, allow_patterns))
        return str(_manifest_only(tmp_path / f"snapshot{len(calls)}"))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.chdir(tmp_path)
    assert hub.resolve_benchmark("org/Bench", ["a-clean"]) == tmp_path / "snapshot1"
    assert calls[-1] == ("org/Bench", "dataset", ["README.md", MANIFEST, "a-clean/*"])
    hub.resolve_benchmark("org/Bench")
    assert calls[-1][2] == ["README.md", MANIFEST, "*/*"]
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(tmp_path))
    with pytest.raises(ValueError, match="the Hub repo 'org/Bench' is not a benchmark"):
        hub.resolve_benchmark("org/Bench")


def test_the_evaluation_and_the_training_resolve_through_the_hub_module():
    import inspect

    from hf_robustmed import evaluation
    from hf_robustmed.adaptation import train

    assert evaluation.resolve_benchmark is hub.resolve_benchmark
    assert "from ..hub import resolve_benchmark" in inspect.getsource(train)
    assert not hasattr(evaluation, "read_manifest") and not hasattr(evaluation, "_download")


def test_push_refuses_a_folder_whose_build_is_unfinished(tmp_path):
    bench = _manifest_only(tmp_path / "bench")
    (bench / MANIFEST).write_text(json.dumps({"complete": False}))
    with pytest.raises(ValueError, match="holds an unfinished build; rerun the build to complete it before pushing"):
        hub.push_folder(bench, "me/bench")
    with pytest.raises(ValueError, match="folder not found"):
        hub.push_folder(tmp_path / "nosuch", "me/bench")


def test_a_damaged_manifest_is_refused_before_the_hub_is_asked(tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    from hf_robustmed.hub import push_folder

    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "benchmark.json").write_text('{"name": "bench", "complete": true}')  # no settings, datasets, configs
    monkeypatch.setattr(HfApi, "create_repo", lambda *a, **k: pytest.fail("the Hub was asked"))
    with pytest.raises(ValueError, match="not a benchmark manifest hf-robustmed can read"):
        push_folder(folder, "someone/bench")
