"""Probes: a planted direction is recovered, the control task is at chance when nothing can be
memorised (and not when something can), the held-out split holds items out, and the scikit-learn
contract holds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_info, threadpool_limits

from core.interp.probes import probe as probes_module
from core.interp.probes.data import ProbeDataError, ProbeDataset
from core.interp.probes.probe import (
    LayerProbes,
    ProbeSettings,
    check_classes,
    control_labels,
    fit_probes,
    make_probe,
    mean_difference,
    probe_direction,
    split_indices,
)


def _cos(a, b) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def planted(n=2000, d=32, seed=0, noise=0.5):
    """Activations with one linear direction w that decides the label, anisotropic scales."""
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.3, 3.0, size=d)
    X = rng.normal(size=(n, d)) * scales  # [batch, d]
    w = rng.normal(size=d)
    margin = X @ w / np.linalg.norm(w * scales)
    y = np.where(margin + noise * rng.normal(size=n) > 0, "b", "a").astype(object)
    return X, y, w


def test_probe_recovers_a_planted_direction():
    X, y, w = planted()
    probes = LayerProbes().fit(X[None], y)
    assert probes.directions_.shape == (1, 1, 32)
    assert _cos(probes.directions_[0, 0], w) > 0.9  # points toward classes_[1] = "b"
    assert list(probes.classes_) == ["a", "b"]
    assert probes.score(X[None], y)[0] > 0.85


def test_ridge_probe_recovers_a_planted_direction():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1500, 24)) * rng.uniform(0.5, 2, size=24)
    w = rng.normal(size=24)
    y = X @ w + 0.3 * rng.normal(size=1500)
    probes = LayerProbes(target="numeric").fit(X[None], y)
    assert _cos(probes.directions_[0, 0], w) > 0.99
    assert probes.score(X[None], y)[0] > 0.95  # R^2
    assert probes.classes_.size == 0


def test_raw_direction_undoes_the_scaler():
    X, y, _ = planted(n=600, d=8)
    pipe = make_probe().fit(X, y)
    raw = probe_direction(pipe)[0]
    # the decision function is linear in raw activations with exactly these weights
    f = pipe.decision_function(X)
    assert np.allclose(f - X @ raw, (f - X @ raw)[0], atol=1e-8)


def test_sklearn_contract():
    X, y, _ = planted(n=300, d=6)
    est = LayerProbes(C=0.5)
    assert est.get_params()["C"] == 0.5 and not hasattr(est, "probes_")
    assert est.fit(X[None].repeat(3, 0), y) is est
    assert est.n_layers_ == 3 and len(est.probes_) == 3
    assert est.predict(X[None].repeat(3, 0)).shape == (3, 300)
    with pytest.raises(ValueError, match="layer, batch, d"):
        LayerProbes().fit(X, y)


def test_control_labels_are_one_label_per_word_type():
    types = ["Mary", "John", "Mary", "Anna", "John", "Mary"]
    labels = ["f", "m", "f", "f", "m", "f"]
    ctrl = control_labels(types, labels, seed=3)
    assert ctrl[0] == ctrl[2] == ctrl[5] and ctrl[1] == ctrl[4]
    assert set(ctrl) <= {"f", "m"}
    many = control_labels([f"w{i}" for i in range(4000)], ["a", "b"] * 2000, seed=0)
    assert 0.45 < np.mean(many == "a") < 0.55  # drawn from the label distribution


def _typed_dataset(n_types=60, per_type=20, d=40, seed=0):
    """Each word type has a fixed random embedding (its identity) plus one coordinate that
    carries its label, so the real task generalises to new types and random labels per type can
    still be memorised from the identity part."""
    rng = np.random.default_rng(seed)
    type_label = rng.permutation(np.arange(n_types) % 2)  # balanced labels per type
    emb = rng.normal(size=(n_types, d))
    emb[:, 0] = np.where(type_label == 1, 2.0, -2.0)
    types = np.repeat(np.arange(n_types), per_type)
    labels = np.where(type_label[types] == 1, "x", "y")
    X = emb[types] + 0.3 * rng.normal(size=(len(types), d))  # [batch, d]
    names = tuple(f"t{t}" for t in types)
    data = ProbeDataset("typed", tuple(f"text {i}" for i in range(len(types))), tuple(labels),
                        "class", names, names)
    return X, data


def test_control_task_is_at_chance_on_held_out_word_types_and_memorised_on_seen_ones():
    X, data = _typed_dataset()
    r = fit_probes(X[None], data, settings=ProbeSettings(cv_folds=3))
    assert r.test_score[0] > 0.9  # the real task generalises to new word types
    # control on held-out types: nothing to memorise -> chance
    y_ctrl = control_labels(data.word_types, data.y(), seed=0)
    train, test = split_indices(data, "heldout")
    control = LayerProbes().fit(X[None, train], y_ctrl[train])
    assert abs(control.score(X[None, test], y_ctrl[test])[0] - 0.5) < 0.12
    # on seen types the control task can be memorised from the type embeddings: selectivity low
    assert r.control_score[0] > 0.8
    assert r.selectivity[0] == pytest.approx(r.seen_score[0] - r.control_score[0])
    assert r.cv_mean[0] > 0.85 and r.cv_std[0] < 0.1


def test_control_scores_near_chance_when_activations_hold_no_word_identity():
    rng = np.random.default_rng(2)
    X, data = _typed_dataset()
    signal = (data.y() == "x").astype(float)[:, None] * rng.normal(size=(1, 40))
    X_noise = signal + rng.normal(size=X.shape)  # label direction + noise, no word identity
    r = fit_probes(X_noise[None], data, settings=ProbeSettings(cv_folds=0))
    assert r.seen_score[0] > 0.9
    assert abs(r.control_score[0] - 0.5) < 0.15  # random labels per type: chance


def test_heldout_split_keeps_word_types_apart():
    _, data = _typed_dataset(n_types=40, per_type=5)
    train, test = split_indices(data, "heldout", seed=1)
    types = np.asarray(data.word_types)
    assert not set(types[train]) & set(types[test])
    assert len(test) == pytest.approx(0.25 * len(data), abs=10)
    seen_train, seen_test = split_indices(data, "random", seed=1)
    assert set(types[seen_train]) & set(types[seen_test])


def test_fixed_split_is_used():
    X, data = _typed_dataset(n_types=20, per_type=10)
    is_test = tuple(i % 4 == 0 for i in range(len(data)))
    data = ProbeDataset(**{**data.__dict__, "is_test": is_test})
    train, test = split_indices(data, "heldout")
    assert list(test) == [i for i in range(len(data)) if i % 4 == 0]


def test_too_few_examples_per_class_is_reported():
    with pytest.raises(ProbeDataError, match=r"'rare' \(3\)"):
        check_classes(np.array(["a"] * 10 + ["rare"] * 2, dtype=object),
                      np.array(["a"] * 3 + ["rare"], dtype=object))
    with pytest.raises(ProbeDataError, match="only on one side"):
        check_classes(np.array(["a"] * 10 + ["b"] * 6, dtype=object),
                      np.array(["a"] * 3, dtype=object))


def test_fit_probes_reports_a_too_small_class():
    X, data = _typed_dataset(n_types=30, per_type=4)
    labels = list(data.labels)
    labels[:3] = ["tiny"] * 3
    data = ProbeDataset(**{**data.__dict__, "labels": tuple(labels)})
    with pytest.raises(ProbeDataError, match="tiny"):
        fit_probes(X[None], data)


def test_mean_difference_points_from_class_0_to_class_1():
    X = np.array([[[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 1.0]]])  # [layer, batch, d]
    y = np.array(["a", "b", "a", "b"], dtype=object)
    assert np.allclose(mean_difference(X, y, ("a", "b")), [[[2.0, 0.0]]])
    three = mean_difference(X, np.array(["a", "b", "c", "c"], dtype=object), ("a", "b", "c"))
    # each class mean minus the overall mean (1, 0.5)
    assert np.allclose(three, [[[-1.0, -0.5], [1.0, -0.5], [0.0, 0.5]]])


def test_report_shapes_and_cosine():
    X, data = _typed_dataset()
    acts = np.stack([X, X * 2.0, np.random.default_rng(0).normal(size=X.shape)])  # [layer, batch, d]
    r = fit_probes(acts, data, settings=ProbeSettings(cv_folds=0))
    assert r.confusion.shape == (3, 2, 2) and r.confusion[0].sum() == r.n_test
    assert r.cosine.shape == (3, 3) and np.allclose(np.diag(r.cosine), 1)
    assert r.cosine[0, 1] > 0.9  # the same information, rescaled: the same direction
    assert abs(r.cosine[0, 2]) < 0.5
    assert r.test_score[2] < 0.7 < r.test_score[0]  # noise layer reads nothing


def _blas_threads() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


class _BlasSpy(BaseEstimator, TransformerMixin):
    """A pass-through pipeline step that records the BLAS thread count while the probe fits."""

    seen: list[int] = []

    def fit(self, X, y=None):
        _BlasSpy.seen.append(_blas_threads())
        return self

    def transform(self, X):
        return X


def test_fitting_leaves_the_process_wide_blas_threads_alone(monkeypatch):
    """threadpool limits are process-wide: a probe fit in one session must not change them for every
    other session's matrix products (the benchmark sets its own)."""
    original = probes_module.make_probe
    monkeypatch.setattr(probes_module, "make_probe",
                        lambda *a, **k: Pipeline([("spy", _BlasSpy()), *original(*a, **k).steps]))
    X, y, _ = planted(n=300, d=8)
    groups = np.arange(300) % 10
    with threadpool_limits(2, user_api="blas"):
        outside = _blas_threads()
        if outside < 2:
            pytest.skip("this BLAS runs a single thread: nothing to tell apart")
        _BlasSpy.seen = []
        LayerProbes().fit(np.stack([X, X]), y)
        probes_module.cross_validate(X[None], y, groups, "class", 3)
    assert len(_BlasSpy.seen) == 2 + 3 and set(_BlasSpy.seen) == {outside}
