"""Hand-written backprop against two oracles: torch autograd, and finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.scratch.data import make_dataset
from core.scratch.mlp import (
    ACTIVATIONS,
    LOSSES,
    Architecture,
    forward,
    init_params,
    loss_and_grad,
    param_names,
    unflatten,
)
from core.scratch.train import TrainConfig, train

HIDDEN_SHAPES = [(3,), (5, 4), (2, 3, 4)]


def _random_case(activation: str, loss: str, hidden: tuple[int, ...], seed: int):
    rng = np.random.default_rng(seed)
    arch = Architecture((2, *hidden, 1), activation, loss)
    theta = rng.normal(0.0, 1.0, arch.n_params)
    X = rng.normal(0.0, 1.0, (16, 2))
    y = rng.integers(0, 2, 16).astype(float)
    return arch, theta, X, y


def _torch_loss_and_grad(theta, arch, X, y):
    t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(X, dtype=torch.float64)
    at = 0
    for l, (n_in, n_out) in enumerate(zip(arch.sizes[:-1], arch.sizes[1:], strict=True)):
        W = t[at : at + n_in * n_out].reshape(n_in, n_out)
        at += n_in * n_out
        b = t[at : at + n_out]
        at += n_out
        z = a @ W + b
        if l < arch.n_layers - 1:
            a = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[arch.activation](z)
    z_out, target = z[:, 0], torch.tensor(y, dtype=torch.float64)
    if arch.loss == "bce":
        loss = F.binary_cross_entropy_with_logits(z_out, target)
    else:
        loss = F.mse_loss(torch.sigmoid(z_out), target)
    loss.backward()
    return float(loss.detach()), t.grad.numpy()


@pytest.mark.parametrize("activation,loss", list(itertools.product(ACTIVATIONS, LOSSES)))
@pytest.mark.parametrize("hidden", HIDDEN_SHAPES)
def test_gradient_equals_torch_autograd(activation, loss, hidden):
    for seed in range(3):
        arch, theta, X, y = _random_case(activation, loss, hidden, seed)
        ours_loss, ours = loss_and_grad(theta, arch, X, y)
        ref_loss, ref = _torch_loss_and_grad(theta, arch, X, y)
        assert ours_loss == pytest.approx(ref_loss, abs=1e-10)
        assert np.abs(ref).max() > 1e-4  # a real gradient, not all zeros
        np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("activation,loss", list(itertools.product(ACTIVATIONS, LOSSES)))
def test_gradient_equals_finite_differences(activation, loss):
    arch, theta, X, y = _random_case(activation, loss, (4, 3), seed=7)
    _, grad = loss_and_grad(theta, arch, X, y)
    h = 1e-6
    numeric = np.empty_like(theta)
    for k in range(len(theta)):
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (loss_and_grad(up, arch, X, y)[0] - loss_and_grad(down, arch, X, y)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, atol=1e-6, rtol=1e-5)


def test_flat_layout_and_names_agree():
    arch = Architecture((2, 3, 1))
    theta = np.arange(arch.n_params, dtype=float)
    (W1, b1), (W2, b2) = unflatten(theta, arch.sizes)
    assert W1.shape == (2, 3) and b1.shape == (3,) and W2.shape == (3, 1) and b2.shape == (1,)
    names = param_names(arch.sizes)
    assert len(names) == arch.n_params == 13
    assert names[theta.tolist().index(W1[1, 2])] == "W1[2,3]"  # input 2 -> hidden unit 3
    assert names[int(b2[0])] == "b2[1]"


def test_inits_have_their_scales():
    arch = Architecture((2, 16, 16, 1), "relu")
    for init, expect_std in (("he", np.sqrt(2 / 16)), ("small", 0.1)):
        W2 = unflatten(init_params(arch, init, seed=0), arch.sizes)[1][0]
        assert W2.std() == pytest.approx(expect_std, rel=0.15)
    W2 = unflatten(init_params(arch, "xavier", seed=0), arch.sizes)[1][0]
    assert np.abs(W2).max() <= np.sqrt(6 / 32) and W2.std() == pytest.approx(np.sqrt(2 / 32), rel=0.15)
    assert not init_params(arch, "zero", seed=0).any()
    np.testing.assert_array_equal(init_params(arch, "he", 3), init_params(arch, "he", 3))
    assert not np.array_equal(init_params(arch, "he", 3), init_params(arch, "he", 4))


def test_a_2_4_1_tanh_net_solves_xor_on_most_seeds():
    data = make_dataset("xor")
    solved = [train(TrainConfig(hidden=(4,), activation="tanh", seed=s), data.X, data.y).final_accuracy == 1.0
              for s in range(10)]
    assert sum(solved) >= 8, solved


def test_one_hidden_unit_never_solves_xor():
    # one unit draws one line; the output, monotone in it, cannot carve out XOR's two corners
    data = make_dataset("xor")
    accs = [train(TrainConfig(hidden=(1,), seed=s, epochs=500), data.X, data.y).final_accuracy
            for s in range(5)]
    assert max(accs) <= 0.75


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_all_zero_init_keeps_hidden_units_identical(activation):
    data = make_dataset("noisy_xor", n_points=40, seed=1)
    result = train(TrainConfig(hidden=(4, 3), activation=activation, init="zero", epochs=300, lr=0.1),
                   data.X, data.y)
    for theta in result.snapshots:
        (W1, b1), (W2, b2), (W3, _) = unflatten(theta, result.arch.sizes)
        for W, b, W_next in ((W1, b1, W2), (W2, b2, W3)):
            np.testing.assert_array_equal(W, np.repeat(W[:, :1], W.shape[1], axis=1))
            np.testing.assert_array_equal(b, np.full_like(b, b[0]))
            np.testing.assert_array_equal(W_next, np.repeat(W_next[:1], W_next.shape[0], axis=0))
    moved = np.abs(result.snapshots[-1] - result.snapshots[0]).max()
    if activation == "sigmoid":
        assert moved > 1e-3  # training did change the weights; they just changed in lockstep
    else:
        assert moved == 0.0  # tanh(0) = 0 feeds nothing forward and passes no gradient back: frozen
    assert {k for k, _ in result.diagnosis.symmetric_groups} == {1, 2}


def test_forward_output_is_a_probability():
    arch, theta, X, _ = _random_case("relu", "bce", (5,), seed=2)
    p = forward(theta * 100, arch, X).p
    assert p.shape == (16,) and np.all((p >= 0) & (p <= 1)) and np.isfinite(p).all()
