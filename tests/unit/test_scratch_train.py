"""The training loop: seeded, snapshots that replay it, divergence caught, failures named."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.scratch.data import make_dataset
from core.scratch.diagnose import dead_relu_units, plateau_since, symmetric_groups
from core.scratch.mlp import Architecture, forward, init_params, loss_value, unflatten
from core.scratch.train import TrainConfig, train

XOR = make_dataset("xor")
NOISY = make_dataset("noisy_xor", 60, 0.15, seed=0)


def test_same_config_same_run_and_the_seed_matters():
    cfg = TrainConfig(hidden=(3,), epochs=200, batch_size=8, seed=5)
    a, b = train(cfg, NOISY.X, NOISY.y), train(cfg, NOISY.X, NOISY.y)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.snapshots, b.snapshots)
    c = train(TrainConfig(hidden=(3,), epochs=200, batch_size=8, seed=6), NOISY.X, NOISY.y)
    assert not np.array_equal(a.losses, c.losses)


def test_snapshots_replay_the_recorded_losses():
    r = train(TrainConfig(hidden=(4,), epochs=300, n_snapshots=30), NOISY.X, NOISY.y)
    assert r.snapshot_epochs[0] == 0 and r.snapshot_epochs[-1] == 300 and len(r.snapshot_epochs) == 31
    assert len(r.losses) == 301
    np.testing.assert_array_equal(r.snapshots[0], init_params(r.arch, "xavier", 0))
    for e, theta in zip(r.snapshot_epochs, r.snapshots, strict=True):
        fwd = forward(theta, r.arch, NOISY.X)
        assert loss_value("bce", fwd.zs[-1][:, 0], fwd.p, NOISY.y) == pytest.approx(r.losses[e], abs=1e-12)
    assert r.snapshot_index(25) == 2 and r.snapshot_index(300) == 30
    assert r.losses[-1] < 0.5 * r.losses[0]


def test_mini_batches_take_one_step_per_batch():
    full = train(TrainConfig(epochs=50), NOISY.X, NOISY.y)
    mini = train(TrainConfig(epochs=50, batch_size=16), NOISY.X, NOISY.y)
    assert full.steps == 50 and mini.steps == 50 * math.ceil(60 / 16)
    assert not np.array_equal(full.losses, mini.losses)


def test_a_huge_learning_rate_is_caught_as_divergence_and_never_leaks_nan():
    cfg = TrainConfig(hidden=(8,), activation="relu", optimizer="sgd", lr=50.0, epochs=500)
    r = train(cfg, NOISY.X, NOISY.y)
    assert r.diverged_at is not None and r.diverged_at < 50
    assert r.diagnosis.outcome == "diverged"
    assert r.diagnosis.findings[0].title == f"Diverged at epoch {r.diverged_at}"
    assert r.epochs_run == r.diverged_at - 1 and r.snapshot_epochs[-1] == r.diverged_at - 1
    assert np.isfinite(r.losses).all() and np.isfinite(r.snapshots).all()


def test_a_sane_learning_rate_does_not_diverge():
    cfg = TrainConfig(hidden=(8,), activation="relu", optimizer="sgd", lr=0.1, epochs=500)
    r = train(cfg, NOISY.X, NOISY.y)
    assert r.diverged_at is None and r.epochs_run == 500 and r.diagnosis.outcome != "diverged"


def test_outcomes_are_named():
    solved = train(TrainConfig(hidden=(4,), seed=0), XOR.X, XOR.y)
    assert solved.diagnosis.outcome == "solved" and solved.final_accuracy == 1.0
    stuck = train(TrainConfig(hidden=(4,), init="zero"), XOR.X, XOR.y)
    assert stuck.diagnosis.outcome == "stuck" and stuck.diagnosis.plateau_since == 0
    assert "answering 0.5 for everything" in stuck.diagnosis.findings[0].detail
    slow = train(TrainConfig(hidden=(4,), optimizer="sgd", lr=0.01, epochs=100), NOISY.X, NOISY.y)
    assert slow.diagnosis.outcome == "learning"


def test_dead_relus_are_counted():
    arch = Architecture((2, 3, 1), "relu")
    theta = init_params(arch, "he", 0)
    (W1, b1), _ = unflatten(theta, arch.sizes)
    W1[:, 1], b1[1] = 0.0, -1.0  # unit 2 never fires
    W1[:, 2], b1[2] = -5.0, -0.1  # unit 3 is negative on all of XOR's (non-negative) inputs
    assert dead_relu_units(arch, theta, XOR.X) == [(1, 2), (1, 3)]
    assert dead_relu_units(Architecture((2, 3, 1), "tanh"), theta, XOR.X) == []


def test_symmetric_units_are_grouped():
    arch = Architecture((2, 4, 1))
    theta = init_params(arch, "xavier", 0)
    assert symmetric_groups(arch, theta) == []
    (W1, b1), (W2, _) = unflatten(theta, arch.sizes)
    W1[:, 3], b1[3], W2[3] = W1[:, 1], b1[1], W2[1]
    assert symmetric_groups(arch, theta) == [(1, (2, 4))]


def test_plateau_detection():
    assert plateau_since(np.full(100, 0.69)) == 0
    assert plateau_since(np.linspace(1.0, 0.1, 100)) is None
    drop_then_flat = np.concatenate([np.linspace(1.0, 0.3, 40), np.full(60, 0.3)])
    assert plateau_since(drop_then_flat) == 39  # linspace's last value, 0.3, is at index 39
    assert plateau_since(np.concatenate([np.full(90, 0.5), np.linspace(0.5, 0.1, 10)])) is None


@pytest.mark.parametrize("bad", [dict(hidden=()), dict(hidden=(4, 4, 4, 4)), dict(hidden=(17,)),
                                 dict(activation="gelu"), dict(lr=0.0), dict(init="ones")])
def test_bad_configs_are_refused(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)
