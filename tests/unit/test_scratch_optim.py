"""Our optimisers take the same steps as torch.optim on the same gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.scratch.optim import Optimizer, OptimizerConfig


def _run_both(cfg: OptimizerConfig, torch_opt, steps: int = 12):
    rng = np.random.default_rng(0)
    theta = rng.normal(size=9)
    grads = [rng.normal(size=9) * 10.0 ** rng.integers(-3, 2) for _ in range(steps)]
    p = torch.tensor(theta.copy(), dtype=torch.float64, requires_grad=True)
    ref = torch_opt([p])
    ours = Optimizer(cfg, theta.size)
    for g in grads:
        ours.step(theta, g)
        p.grad = torch.tensor(g, dtype=torch.float64)
        ref.step()
    return theta, p.detach().numpy(), rng.normal(size=9)


@pytest.mark.parametrize("name,make", [
    ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
    ("adam", lambda ps: torch.optim.Adam(ps, lr=0.1)),
])
def test_steps_match_torch_optim(name, make):
    ours, ref, _ = _run_both(OptimizerConfig(name, lr=0.1), make)
    np.testing.assert_allclose(ours, ref, atol=1e-12, rtol=0)


def test_the_three_optimisers_differ():
    results = [_run_both(OptimizerConfig(name, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1))[0]
               for name in ("sgd", "momentum", "adam")]
    assert not np.allclose(results[0], results[1]) and not np.allclose(results[0], results[2])


def test_bad_optimizer_config_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        OptimizerConfig("rmsprop")
    with pytest.raises(ValueError, match="positive"):
        OptimizerConfig("sgd", lr=0.0)
