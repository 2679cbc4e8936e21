"""Linear probes: what can be read off each layer, and does the probe read it or just memorise?

A probe is a small classifier trained on a model's activations to predict a property of the input,
say the gender of a sentence's main character. If a *linear* probe on layer L predicts it well on
examples it never saw, the information is linearly readable at layer L. Here each probe is a
scikit-learn Pipeline: StandardScaler (every activation dimension to mean 0, variance 1), then
LogisticRegression for classes or Ridge for a number. `LayerProbes` fits one per layer.

Three guards keep probing honest (Belinkov, 2022):
1. Held-out items. The test set uses names and sentence frames the probe never trained on, so
   "Mary -> female" cannot be remembered, only read. Cross-validation on the training part (folds
   that keep a word type together) says how stable the score is.
2. A control task (Hewitt & Liang, 2019). Each word type gets a random label, and the same probe is
   fitted on it, on a random split where train and test share word types (with held-out types
   there is nothing to memorise, and the control sits at chance). A probe that does well on the
   control is memorising word identities. Selectivity = accuracy - control accuracy, both on that
   split: high means the score comes from the representation, not from the probe's own capacity.
3. A causal check (probe_causal). Readable is not the same as used: remove the probe's direction
   during a forward pass and see whether the behaviour that should depend on it changes.

The probe's direction lives in the model's own activation space: with weights w on standardised
inputs (x - mean) / scale, the direction on raw activations is w / scale. That is what is compared
across layers (cosine similarity), removed in the causal check, and sent to the steering page.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedShuffleSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from core.interp.probes.activations import HookPoints
from core.interp.probes.data import ProbeDataError, ProbeDataset, check_class_sizes

SPLITS = ("heldout", "random")  # held-out items, or a random split over shared word types
PROBE_KINDS = {"class": "logistic regression", "numeric": "ridge regression"}  # target -> probe


@dataclass(frozen=True)
class ProbeSettings:
    """How the probes are fitted: cv_folds (0 or 1: no cross-validation), the seed of every split,
    C (logistic regression's inverse regularisation), alpha (Ridge's), the solver and its steps."""

    cv_folds: int = 5
    seed: int = 0
    C: float = 1.0
    alpha: float = 1.0
    solver: str = "newton-cg"
    max_iter: int = 200

    def estimator(self) -> dict:
        return dict(C=self.C, alpha=self.alpha, solver=self.solver, max_iter=self.max_iter)


def make_probe(target: str = "class", C: float = 1.0, alpha: float = 1.0,
               solver: str = "newton-cg", max_iter: int = 200) -> Pipeline:
    """StandardScaler + LogisticRegression (target "class") or + Ridge (target "numeric")."""
    model = (LogisticRegression(C=C, solver=solver, max_iter=max_iter) if target == "class"
             else Ridge(alpha=alpha))
    return Pipeline([("scale", StandardScaler()), ("probe", model)])


def probe_direction(pipeline: Pipeline) -> np.ndarray:
    """Weights on raw activations [n_dir, d]: one row (binary, numeric) or one per class."""
    coef = np.atleast_2d(pipeline.named_steps["probe"].coef_)  # [n_dir, d] on standardised inputs
    return coef / pipeline.named_steps["scale"].scale_


class LayerProbes(BaseEstimator):
    """One probe per layer on X [layer, batch, d]; settings as in make_probe.

    After fit: probes_ (one fitted Pipeline per layer), directions_ [layer, n_dir, d],
    classes_ (empty for a numeric target), n_layers_. score() returns one score per layer:
    accuracy for classes, R^2 for a number.
    """

    def __init__(self, target: str = "class", C: float = 1.0, alpha: float = 1.0,
                 solver: str = "newton-cg", max_iter: int = 200):
        self.target = target
        self.C = C
        self.alpha = alpha
        self.solver = solver
        self.max_iter = max_iter

    def _new(self) -> Pipeline:
        return make_probe(self.target, self.C, self.alpha, self.solver, self.max_iter)

    def fit(self, X: np.ndarray, y: np.ndarray) -> LayerProbes:
        X = np.asarray(X)
        if X.ndim != 3:
            raise ValueError(f"X must be [layer, batch, d], got shape {X.shape}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.probes_ = [self._new().fit(X[layer], y) for layer in range(X.shape[0])]
        self.n_layers_ = X.shape[0]
        self.classes_ = (self.probes_[0].classes_ if self.target == "class" else np.array([]))
        self.directions_ = np.stack([probe_direction(p) for p in self.probes_])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """[layer, batch] predictions."""
        return np.stack([p.predict(X[i]) for i, p in enumerate(self.probes_)])

    def score(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """[layer] accuracy (classes) or R^2 (numeric) on (X, y)."""
        return np.array([p.score(X[i], y) for i, p in enumerate(self.probes_)])


def control_labels(word_types, labels, seed: int = 0) -> np.ndarray:
    """Hewitt & Liang's control task: each word type gets one label drawn from the label
    distribution, the same for every occurrence of that type."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    types = sorted(set(word_types))
    drawn = dict(zip(types, rng.choice(labels, size=len(types)), strict=True))
    return np.array([drawn[t] for t in word_types], dtype=labels.dtype)


def split_indices(data: ProbeDataset, split: str = "heldout", test_fraction: float = 0.25,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices. "heldout": the dataset's fixed split, or whole word types held
    out; "random": a (stratified) random split, so train and test share word types."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    n = len(data)
    strat = np.asarray(data.labels) if data.target == "class" else np.zeros(n)
    if split == "heldout" and data.is_test is not None:
        test = np.asarray(data.is_test)
    elif split == "heldout":
        # hold out a random set of word types; stratify by each type's label
        types = np.asarray(data.groups)
        _, first, inverse = np.unique(types, return_index=True, return_inverse=True)  # first row per type
        _, type_test = _stratified(strat[first], test_fraction, seed)
        test = np.isin(inverse, type_test)
    else:
        _, test_idx = _stratified(strat, test_fraction, seed)
        test = np.isin(np.arange(n), test_idx)
    return np.flatnonzero(~test), np.flatnonzero(test)


def _stratified(y: np.ndarray, test_fraction: float, seed: int):
    n_test = max(1, round(len(y) * test_fraction))
    if len(y) < 2 or n_test >= len(y):
        raise ProbeDataError(f"Only {len(y)} items to split into training and test: add rows.")
    counts = np.unique(y, return_counts=True)[1]
    splitter = StratifiedShuffleSplit(1, test_size=n_test, random_state=seed)
    if counts.min() < 2 or len(counts) > n_test or len(counts) > len(y) - n_test:
        rng = np.random.default_rng(seed)  # too few per class to stratify: a plain random split
        perm = rng.permutation(len(y))
        return perm[n_test:], perm[:n_test]
    return next(splitter.split(np.zeros(len(y)), y))


def check_classes(y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Every class needs MIN_PER_CLASS examples, and rows on both sides of the split; say which do not."""
    check_class_sizes(np.concatenate([y_train, y_test]))
    classes = np.unique(np.concatenate([y_train, y_test]))
    train_classes, test_classes = set(np.unique(y_train)), set(np.unique(y_test))
    missing = [repr(str(c)) for c in classes if c not in train_classes or c not in test_classes]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise ProbeDataError(f"Class(es) {shown} end up only on one side of the held-out split (all "
                             "their word types are held out, or none are): add more word types "
                             "(different tokens or texts) to those classes.")
    if len(train_classes) < 2:
        raise ProbeDataError("The training part has a single class: a probe needs two.")


@dataclass(frozen=True)
class Splits:
    """Row indices of the two splits: held-out items (train, test) and a random split over shared
    word types (seen_train, seen_test), for the probe on seen items and the control task."""

    train: np.ndarray
    test: np.ndarray
    seen_train: np.ndarray
    seen_test: np.ndarray


def plan_splits(data: ProbeDataset, seed: int = 0) -> Splits:
    """Both splits, checked: raises ProbeDataError when a class is too small or falls on one side.

    Needs only the labels and word types, so the page calls it before any activation is collected:
    data that cannot be split is refused in milliseconds, not after a pass over the model."""
    train, test = split_indices(data, "heldout", seed=seed)
    seen_train, seen_test = split_indices(data, "random", seed=seed)
    if data.target == "class":
        y = data.y()
        check_classes(y[train], y[test])
        check_classes(y[seen_train], y[seen_test])
    return Splits(train, test, seen_train, seen_test)


@dataclass(frozen=True)
class ProbeReport:
    """Per layer scores (accuracy, or R² for a numeric target) and directions.

    layers: the lab's layer numbers (EMBEDDINGS = -1 is the stream before block 0), hook_names the
    hook point read at each. probe_kind: "logistic regression" (classes) or "ridge regression".
    test_score: probe trained and tested on different items (held-out names, frames, templates).
    seen_score / control_score: probe and control task on a random split, where train and test share
    word types (the setting of Hewitt & Liang); selectivity = seen_score - control_score.
    cv_mean / cv_std: cross-validation on the held-out split's training part, folds by word type.
    directions: the probe's weights on raw activations; mean_diff: the difference of class means
    (for a number: the covariance of the activations with it), both [layer, n_dir, d].
    """

    layers: tuple[int, ...]
    hook_names: tuple[str, ...]
    target: str
    metric: str  # "accuracy" or "R²"
    classes: tuple[str, ...]
    test_score: np.ndarray  # [layer]
    train_score: np.ndarray  # [layer]
    seen_score: np.ndarray  # [layer]
    control_score: np.ndarray  # [layer]
    selectivity: np.ndarray  # [layer]
    cv_mean: np.ndarray  # [layer] (nan without cross-validation)
    cv_std: np.ndarray  # [layer]
    chance: float  # majority-class rate on the test set (classes), 0 for R²
    confusion: np.ndarray | None  # [layer, class, class] on the test set (rows: true)
    y_test: np.ndarray
    predictions: np.ndarray  # [layer, n_test]
    cosine: np.ndarray  # [layer, layer] between probe directions
    directions: np.ndarray  # [layer, n_dir, d]
    mean_diff: np.ndarray  # [layer, n_dir, d]
    n_train: int
    n_test: int
    notes: tuple[str, ...] = ()

    @property
    def probe_kind(self) -> str:
        return PROBE_KINDS[self.target]

    def index(self, layer: int) -> int:
        """Position of a lab layer number in the per-layer arrays."""
        return self.layers.index(layer)


def cross_validate(X: np.ndarray, y: np.ndarray, groups: np.ndarray, target: str, folds: int,
                   seed: int = 0, **settings) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) over folds per layer; folds keep each group together. Each layer's probe starts
    from the previous fold's solution (warm start): the optimum is the same, found in fewer steps."""
    splitter = (StratifiedGroupKFold(folds, shuffle=True, random_state=seed) if target == "class"
                else GroupKFold(folds))
    splits = list(splitter.split(X[0], y, groups))
    scores = np.zeros((folds, len(X)))  # [fold, layer]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for layer in range(len(X)):
            probe = make_probe(target, **settings)
            if target == "class":
                probe.set_params(probe__warm_start=True)
            for fold, (tr, te) in enumerate(splits):
                try:
                    probe.fit(X[layer, tr], y[tr])
                except ValueError:  # this fold lacks a class: the previous solution does not fit
                    probe = make_probe(target, **settings).fit(X[layer, tr], y[tr])
                scores[fold, layer] = probe.score(X[layer, te], y[te])
    return scores.mean(0), scores.std(0)


def direction_cosine(directions: np.ndarray) -> np.ndarray:
    """[layer, layer] cosine between layers' directions, averaged over the rows (classes)."""
    unit = directions / np.maximum(np.linalg.norm(directions, axis=-1, keepdims=True), 1e-12)
    return np.einsum("aid,bid->abi", unit, unit).mean(-1)  # [layer, layer]


def mean_difference(X: np.ndarray, y: np.ndarray, classes=()) -> np.ndarray:
    """[layer, n_dir, d]: mean(class 1) - mean(class 0) for two classes (the sign of the probe's
    row), each class mean minus the overall mean for more, covariance with y for a number."""
    if len(classes) == 0:
        yc = (y.astype(float) - y.astype(float).mean())[None, :, None]  # [1, batch, 1]
        return ((X - X.mean(1, keepdims=True)) * yc).mean(1)[:, None]  # [layer, 1, d]
    means = np.stack([X[:, y == c].mean(1) for c in classes], axis=1)  # [layer, class, d]
    if len(classes) == 2:
        return means[:, 1:] - means[:, :1]
    return means - X.mean(1)[:, None]


def _cv(acts, y, groups, target, cv_folds, seed, settings, notes):
    folds = min(cv_folds, len(np.unique(groups)))
    if target == "class":
        folds = min(folds, int(np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        if cv_folds >= 2:
            notes.append("Too few word types in training for cross-validation.")
        return np.full(len(acts), np.nan), np.full(len(acts), np.nan)
    if folds < cv_folds:
        notes.append(f"Cross-validation used {folds} folds (too few word types or examples per "
                     f"class for {cv_folds}).")
    try:
        return cross_validate(acts, y, groups, target, folds, seed, **settings)
    except ValueError as err:  # a fold whose training part holds a single class
        notes.append(f"Cross-validation was skipped: {err}")
        return np.full(len(acts), np.nan), np.full(len(acts), np.nan)


def fit_probes(acts: np.ndarray, data: ProbeDataset, points: HookPoints | None = None,
               settings: ProbeSettings = ProbeSettings(), splits: Splits | None = None) -> ProbeReport:
    """Probe every layer of acts [layer, batch, d]: held-out items, seen items with the control
    task, and cross-validation. points names the layers (default: 0, 1, ...); splits from
    plan_splits (planned here when not given). Raises ProbeDataError when a class is too small."""
    y, target, notes = data.y(), data.target, []
    seed, fit_settings = settings.seed, settings.estimator()
    splits = splits if splits is not None else plan_splits(data, seed)
    train, test, seen_train, seen_test = splits.train, splits.test, splits.seen_train, splits.seen_test
    probes = LayerProbes(target, **fit_settings).fit(acts[:, train], y[train])
    test_score = probes.score(acts[:, test], y[test])
    seen = LayerProbes(target, **fit_settings).fit(acts[:, seen_train], y[seen_train])
    seen_score = seen.score(acts[:, seen_test], y[seen_test])
    y_control = control_labels(data.word_types, y, seed)
    if target == "class" and len(np.unique(y_control[seen_train])) < 2:
        control_score = np.full(len(acts), np.nan)
        notes.append("The control task drew one label for every word type: no control score.")
    else:
        control = LayerProbes(target, **fit_settings).fit(acts[:, seen_train], y_control[seen_train])
        control_score = control.score(acts[:, seen_test], y_control[seen_test])
    cv_mean, cv_std = _cv(acts[:, train], y[train], np.asarray(data.groups)[train], target,
                          settings.cv_folds, seed, fit_settings, notes)
    predictions = probes.predict(acts[:, test])
    if target == "class":
        confusion = np.stack([confusion_matrix(y[test], p, labels=probes.classes_)
                              for p in predictions])
        chance = float(np.unique(y[test], return_counts=True)[1].max() / len(test))
    else:
        confusion, chance = None, 0.0
    return ProbeReport(
        layers=points.layers if points is not None else tuple(range(len(acts))),
        hook_names=points.hook_names if points is not None else (), target=target,
        metric="accuracy" if target == "class" else "R²", classes=tuple(probes.classes_),
        test_score=test_score, train_score=probes.score(acts[:, train], y[train]),
        seen_score=seen_score, control_score=control_score, selectivity=seen_score - control_score,
        cv_mean=cv_mean, cv_std=cv_std, chance=chance, confusion=confusion, y_test=y[test],
        predictions=predictions, cosine=direction_cosine(probes.directions_),
        directions=probes.directions_,
        mean_diff=mean_difference(acts[:, train], y[train], probes.classes_),
        n_train=len(train), n_test=len(test), notes=tuple(notes))
