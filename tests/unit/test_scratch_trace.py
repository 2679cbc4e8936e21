"""The one-example trace (explicit loops) agrees with the vectorised backward pass."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.scratch.data import make_dataset
from core.scratch.mlp import ACTIVATIONS, LOSSES, Architecture, forward, loss_and_grad
from core.scratch.trace import trace_example, unit_name
from core.scratch.train import TrainConfig, train
from core.scratch.views import _clip_line, hidden_space, make_grid


@pytest.mark.parametrize("activation,loss", list(itertools.product(ACTIVATIONS, LOSSES)))
@pytest.mark.parametrize("hidden", [(2,), (3, 2)])
def test_trace_matches_backward_on_one_example(activation, loss, hidden):
    rng = np.random.default_rng(1)
    arch = Architecture((2, *hidden, 1), activation, loss)
    theta = rng.normal(size=arch.n_params)
    x, y = rng.normal(size=2), 1.0
    t = trace_example(theta, arch, x, y, lr=0.5)
    ref_loss, ref_grad = loss_and_grad(theta, arch, x[None, :], np.array([y]))
    assert t.loss == pytest.approx(ref_loss, abs=1e-12)
    np.testing.assert_allclose(t.gradient(), ref_grad, atol=1e-12)
    assert t.p == pytest.approx(forward(theta, arch, x[None, :]).p[0], abs=1e-12)
    for w in t.weights:
        assert w.new_value == pytest.approx(w.value - 0.5 * w.grad, abs=1e-15)
        assert w.grad == pytest.approx(w.a_in * w.delta_out, abs=1e-15)
    hidden_units = [u for u in t.units if 0 < u.layer < arch.n_layers]
    assert len(hidden_units) == sum(hidden)
    for u in hidden_units:
        assert u.delta == pytest.approx(u.slope * u.dL_da, abs=1e-15)


def test_trace_names_units_and_weights():
    arch = Architecture((2, 2, 1))
    t = trace_example(np.arange(arch.n_params, dtype=float) / 10, arch, np.array([0.0, 1.0]), 1.0, 0.1)
    assert [u.name for u in t.units] == ["x1", "x2", "h1", "h2", "out"]
    assert [w.name for w in t.weights[:6]] == ["W1[1,1]", "W1[1,2]", "W1[2,1]", "W1[2,2]", "b1[1]", "b1[2]"]
    assert t.weights[1].src == "x1" and t.weights[1].dst == "h2" and t.weights[1].grad == 0.0  # x1 = 0
    assert unit_name(Architecture((2, 3, 3, 1)), 2, 3) == "h2.3"


@pytest.mark.parametrize("loss", LOSSES)
def test_a_small_step_lowers_this_examples_loss_and_a_huge_one_can_overshoot(loss):
    arch = Architecture((2, 3, 1), "tanh", loss)
    theta = np.random.default_rng(0).normal(size=arch.n_params)
    x = np.array([1.0, 0.0])
    small = trace_example(theta, arch, x, 1.0, lr=0.01)
    assert small.loss_after < small.loss
    stepped = theta - 0.01 * small.gradient()
    assert small.loss_after == pytest.approx(loss_and_grad(stepped, arch, x[None, :], np.array([1.0]))[0])
    assert trace_example(theta, arch, x, 1.0, lr=500.0).loss_after > small.loss


def test_cross_entropy_output_delta_is_p_minus_y():
    arch = Architecture((2, 2, 1), "tanh", "bce")
    t = trace_example(np.full(arch.n_params, 0.3), arch, np.array([1.0, 0.0]), 0.0, 0.1)
    out = t.units[-1]
    assert out.name == "out" and out.delta == pytest.approx(t.p - 0.0)


def test_hidden_space_separates_a_solved_xor():
    data = make_dataset("xor")
    for hidden in [(2,), (5,)]:
        r = train(TrainConfig(hidden=hidden, seed=0), data.X, data.y)
        assert r.final_accuracy == 1.0
        hs = hidden_space(r.final_theta, r.arch, data.X, data.y)
        assert hs.separated and hs.line is not None and hs.u.shape == (4,)
        (u0, v0), (u1, v1) = hs.line
        # the line is the output's boundary: classes fall on opposite sides of it
        side = np.sign((u1 - u0) * (hs.v - v0) - (v1 - v0) * (hs.u - u0))
        assert len(set(side[data.y == 1])) == 1 and set(side[data.y == 1]) != set(side[data.y == 0])
    z_out = forward(r.final_theta, r.arch, data.X).zs[-1][:, 0]
    np.testing.assert_allclose(hs.u, z_out)


def test_clip_line_and_grid():
    assert _clip_line(1.0, 0.0, -0.5, (0, 1, 0, 1)) == ((0.5, 0.0), (0.5, 1.0))
    assert _clip_line(1.0, 1.0, -1.0, (0, 1, 0, 1)) == ((0.0, 1.0), (1.0, 0.0))
    assert _clip_line(1.0, 0.0, -5.0, (0, 1, 0, 1)) is None
    g = make_grid(np.array([[0.0, 0.0], [1.0, 2.0]]), n=10, pad=0.0)
    assert g.points.shape == (100, 2) and g.xs[0] == pytest.approx(0.05) and g.ys[-1] == pytest.approx(1.9)
