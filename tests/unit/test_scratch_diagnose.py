"""The diagnosis's one piece of advice: computed from the run, never two directions for the learning
rate, each cause tested on constructed runs that go each way, and the epoch budget honoured."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.scratch.data import make_dataset
from core.scratch.diagnose import (
    BOUNCING_SHARE,
    FLAT_GRADIENT,
    STEADY_SHARE,
    Advice,
    Budget,
    advise,
    diagnose,
    rise_share,
)
from core.scratch.mlp import Architecture, init_params, unflatten
from core.scratch.train import MAX_STEPS, TrainConfig, fit_to_budget, train

XOR = make_dataset("xor")
ARCH = Architecture((2, 2, 1), "tanh")
FLAT = np.full(200, 0.5)


def _advise(**over) -> Advice:
    kwargs = dict(outcome="stuck", losses=FLAT, plateau=0, gradient_norm=0.0, dead=[], dead_from_start=[],
                  twins_from_start=[], saturated=[], saturated_from_start=[])
    return advise(ARCH, **{**kwargs, **over})


def test_advice_never_holds_both_learning_rate_directions():
    with pytest.raises(ValueError):
        Advice("x", ("lower_lr", "higher_lr"), "lower", 0.0, 0.0)
    with pytest.raises(ValueError):
        Advice("x", ("lower_lr",), "higher", 0.0, 0.0)  # the direction must match the actions
    with pytest.raises(ValueError):
        Advice("x", ("bigger_hammer",), "keep", 0.0, 0.0)


def test_dead_units_blame_the_learning_rate_only_when_they_died_during_training():
    died = _advise(dead=[(1, 1)], dead_from_start=[])
    assert died.cause == "dead_in_training" and died.lr == "lower" and died.actions[0] == "lower_lr"
    born = _advise(dead=[(1, 1)], dead_from_start=[(1, 1)])
    assert born.cause == "dead_from_start" and born.lr == "keep"
    assert born.actions == ("another_seed", "more_units")
    mixed = _advise(dead=[(1, 1), (1, 2)], dead_from_start=[(1, 1)])  # one of two died in training
    assert mixed.cause == "dead_in_training"


def test_saturation_blames_the_initial_weights_or_the_steps():
    assert _advise(saturated=[(1, 2)], saturated_from_start=[(1, 2)]).actions == ("smaller_init",)
    later = _advise(saturated=[(1, 2)], saturated_from_start=[])
    assert later.cause == "saturated_in_training" and later.lr == "lower"


def test_a_plateau_is_flat_bouncing_or_creeping():
    flat = _advise(gradient_norm=FLAT_GRADIENT / 10)
    assert flat.cause == "flat" and flat.lr == "keep" and "another_seed" in flat.actions
    bouncing = np.tile([0.50, 0.5001], 100)  # the loss rises on every other epoch
    assert rise_share(bouncing) > BOUNCING_SHARE
    b = _advise(losses=bouncing, gradient_norm=0.1)
    assert b.cause == "bouncing" and b.actions == ("lower_lr",)
    creeping = np.linspace(0.5, 0.499, 200)  # falls a little every epoch
    c = _advise(losses=creeping, gradient_norm=0.1)
    assert c.cause == "creeping" and c.actions == ("higher_lr",) and c.lr == "higher"


def test_the_widest_layer_gets_no_more_units_advice():
    wide = advise(Architecture((2, 16, 1)), outcome="stuck", losses=FLAT, plateau=0, gradient_norm=0.0,
                  dead=[], dead_from_start=[], twins_from_start=[], saturated=[], saturated_from_start=[])
    assert wide.actions == ("another_seed",)


def test_still_learning_asks_for_epochs_unless_the_budget_cut_them():
    falling = np.linspace(1.0, 0.5, 101)
    free = _advise(outcome="learning", losses=falling, plateau=None, gradient_norm=0.1)
    assert free.cause == "still_learning" and free.actions == ("more_epochs", "higher_lr")
    budget = Budget(requested=500, trained=150, steps_per_epoch=200, max_steps=30_000)
    cut = _advise(outcome="learning", losses=falling, plateau=None, gradient_norm=0.1, budget=budget,
                  n_points=200)
    assert cut.cause == "cut" and "more_epochs" not in cut.actions and cut.actions[0] == "larger_batch"
    assert cut.fitting_batch == 4  # 30,000 // 500 = 60 steps per epoch fit: batches of ceil(200 / 60)
    noisy = np.linspace(1.0, 0.5, 101) + np.tile([0.0, 0.01], 51)[:101]  # falls, but rises half the time
    bumpy = _advise(outcome="learning", losses=noisy, plateau=None, gradient_norm=0.1)
    assert bumpy.actions == ("more_epochs",)


def test_solved_and_diverged_runs():
    assert _advise(outcome="solved").actions == ()
    assert _advise(outcome="diverged").actions == ("lower_lr",)


def test_budget_arithmetic():
    b = Budget(requested=5000, trained=150, steps_per_epoch=200, max_steps=30_000)
    assert b.cut and b.batch_that_fits(200) == 34  # 30,000 // 5,000 = 6 steps per epoch
    assert not Budget(500, 500, 1, MAX_STEPS).cut
    cfg = fit_to_budget(TrainConfig(epochs=500, batch_size=1), n_points=200)
    assert (cfg.epochs, cfg.epochs_requested) == (150, 500)
    assert fit_to_budget(TrainConfig(epochs=500), n_points=200) == TrainConfig(epochs=500)  # full batch fits


def test_diagnose_tells_units_dead_from_the_start_from_units_killed_by_training():
    arch = Architecture((2, 3, 1), "relu")
    start = init_params(arch, "he", 0)
    (W1, b1), _ = unflatten(start, arch.sizes)
    W1[:, 0], b1[0] = 1.0, 0.1  # units 1 and 2 fire on every example at the start
    W1[:, 1], b1[1] = 1.0, 0.1
    W1[:, 2], b1[2] = -5.0, -0.1  # unit 3 is dead on XOR's non-negative inputs from the start
    end = start.copy()
    (W1e, b1e), _ = unflatten(end, arch.sizes)
    W1e[:, 1], b1e[1] = 0.0, -1.0  # unit 2 dies during training
    losses = np.full(100, 0.6)
    d = diagnose(arch, end, XOR.X, XOR.y, losses, 0.5, theta_start=start)
    assert d.dead_units == ((1, 2), (1, 3)) and d.dead_from_start == ((1, 3),)
    assert d.advice.cause == "dead_in_training" and d.advice.lr == "lower"
    assert "1 of them were dead from the first epoch (unit 3), the others died during training" \
        in d.findings[1].detail
    only_start = diagnose(arch, start, XOR.X, XOR.y, losses, 0.5, theta_start=start)
    assert only_start.advice.cause == "dead_from_start" and only_start.advice.lr == "keep"
    assert "It was dead from the first epoch" in only_start.findings[1].detail


def test_zero_init_is_blamed_on_the_initialisation():
    r = train(TrainConfig(hidden=(4,), init="zero"), XOR.X, XOR.y)
    assert r.diagnosis.advice.cause == "symmetric_init" and r.diagnosis.advice.actions == ("random_init",)
    assert "identical from the start" in r.diagnosis.findings[1].detail


def test_a_batch_one_run_is_cut_and_told_so():
    spirals = make_dataset("spirals", 200, 0.15, 0)
    cfg = fit_to_budget(TrainConfig(hidden=(4,), epochs=500, batch_size=1), spirals.n)
    r = train(cfg, spirals.X, spirals.y)
    d = r.diagnosis
    assert d.outcome == "learning" and d.budget.cut and r.epochs_run == 150
    assert "stopped it at epoch 150 of the 500 asked for" in d.findings[0].detail
    assert d.advice.cause == "cut" and "more_epochs" not in d.advice.actions


def test_real_runs_give_coherent_advice():
    """A sweep over settings that break in different ways: the advice's direction always matches its
    actions, and a run the learning rate cannot be blamed for is never told to change it."""
    noisy = make_dataset("noisy_xor", 60, 0.2, seed=1)
    seen = set()
    grid = itertools.product(("tanh", "relu", "sigmoid"), (0.01, 1.0, 30.0), ("sgd", "adam"), (0, 1))
    for act, lr, opt, seed in grid:
        r = train(TrainConfig(hidden=(2,), activation=act, lr=lr, optimizer=opt, epochs=200, seed=seed),
                  noisy.X, noisy.y)
        a = r.diagnosis.advice
        seen.add(a.cause)
        assert not {"lower_lr", "higher_lr"} <= set(a.actions)
        if a.cause in ("dead_from_start", "symmetric_init", "saturated_from_start", "flat"):
            assert a.lr == "keep"
        if r.diagnosis.outcome == "solved":
            assert a.actions == ()
    assert len(seen) >= 4, seen  # the sweep reaches several causes, so the checks above bite


def test_the_steadiness_words_give_the_measured_rise_share_each_way():
    from ui.xor.views import steadiness

    falling = np.linspace(1.0, 0.5, 801)  # the last quarter: 200 epochs, 199 steps
    never = _advise(outcome="learning", losses=falling, plateau=None, gradient_norm=0.1)
    assert never.rise_share == 0 and "higher_lr" in never.actions
    assert steadiness(never).startswith(", and it never rose in the last quarter")
    assert "no step overshot" in steadiness(never) and "almost" not in steadiness(never)
    once = falling.copy()
    once[-50] = once[-51] + 0.001  # one rise in 199 steps: 0.5%, steady
    rare = _advise(outcome="learning", losses=once, plateau=None, gradient_norm=0.1)
    assert 0 < rare.rise_share <= STEADY_SHARE and "higher_lr" in rare.actions
    words = steadiness(rare)
    assert f"it rose on {rare.rise_share:.1%} of the epochs of the last quarter" in words
    assert "never" not in words and "almost no step overshot" in words
    twice = once.copy()
    twice[-20] = twice[-21] + 0.001  # two in 199: just over 1%, not steady
    bumpy = _advise(outcome="learning", losses=twice, plateau=None, gradient_norm=0.1)
    assert bumpy.rise_share > STEADY_SHARE and bumpy.actions == ("more_epochs",)
    words = steadiness(bumpy)
    assert f"it rose on {bumpy.rise_share:.1%}" in words and "not advised" in words and "never" not in words


def test_a_cut_run_words_its_steadiness_too():
    from ui.xor.views import advice_text

    spirals = make_dataset("spirals", 200, 0.15, 0)
    cfg = fit_to_budget(TrainConfig(hidden=(4,), epochs=500, batch_size=1), spirals.n)
    r = train(cfg, spirals.X, spirals.y)
    a = r.diagnosis.advice
    assert a.cause == "cut"
    text = advice_text(r)
    assert "while its loss was still falling" in text
    if a.rise_share == 0:
        assert "never rose in the last quarter" in text
    else:
        assert f"it rose on {a.rise_share:.1%} of the epochs of the last quarter" in text
