import numpy as np
import pytest

from hf_robustmed.adaptation import FewShotManifest, k_shot, stratified_fraction
from hf_robustmed.adaptation.sampling import hold_out

LABELS = np.array([0] * 50 + [1] * 30 + [2] * 7 + [3] * 1)


def test_stratified_fractions_keep_class_proportions_and_nest():
    ten, thirty = stratified_fraction(LABELS, 0.1), stratified_fraction(LABELS, 0.3)
    assert np.bincount(LABELS[ten], minlength=4).tolist() == [5, 3, 1, 1]  # ceil(0.1·n): rare classes stay
    assert np.bincount(LABELS[thirty], minlength=4).tolist() == [15, 9, 3, 1]
    assert set(ten) <= set(thirty)
    assert np.array_equal(stratified_fraction(LABELS, 1.0), np.arange(len(LABELS)))
    assert np.array_equal(ten, stratified_fraction(LABELS, 0.1))  # deterministic
    assert not np.array_equal(ten, stratified_fraction(LABELS, 0.1, seed=7))


def test_k_shot_caps_at_class_size():
    five = k_shot(LABELS, 5)
    assert np.bincount(LABELS[five], minlength=4).tolist() == [5, 5, 5, 1]
    assert set(five) <= set(k_shot(LABELS, 10))
    with pytest.raises(ValueError, match="at least 1"):
        k_shot(LABELS, 0)
    with pytest.raises(ValueError, match="fraction"):
        stratified_fraction(LABELS, 0)


def test_hold_out_is_disjoint_and_stratified():
    rows = stratified_fraction(LABELS, 0.5)
    train, held = hold_out(rows, LABELS, 0.2)
    assert set(train).isdisjoint(held) and set(train) | set(held) == set(rows)
    assert np.bincount(LABELS[held], minlength=4).tolist() == [5, 3, 0, 0]  # floor(0.2·n), singletons kept


def test_manifest_round_trip_with_source_indices(tmp_path):
    indices = np.arange(len(LABELS)) * 10 + 3
    manifest = FewShotManifest.sample("oct", "validation", LABELS, indices, fraction=0.3, holdout=0.2)
    assert all(i % 10 == 3 for i in manifest.train + manifest.holdout)
    path = manifest.save(tmp_path / "fewshot" / "oct.json")
    assert FewShotManifest.load(path) == manifest
    with pytest.raises(ValueError, match="exactly one"):
        FewShotManifest.sample("oct", "validation", LABELS, fraction=0.1, k=5)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="cannot read"):
        FewShotManifest.load(tmp_path / "bad.json")
