"""Optimisers: how a gradient becomes a step.

The gradient says which way is downhill *here*; the optimiser decides how far to go and whether to
remember earlier steps. All three work on the flat parameter vector theta, in place, and follow
`torch.optim` exactly (same defaults, same order of operations), so the numbers match PyTorch's.

- **SGD**: `theta -= lr * g`. The step is proportional to the slope, so flat regions (plateaus,
  saturated units) are crossed slowly and steep ones can be overshot: too large a learning rate and
  the loss diverges.
- **Momentum**: `v = mu * v + g; theta -= lr * v` (mu = 0.9). A heavy ball: consistent gradients add
  up to about 1 / (1 - mu) = 10 times the step, zig-zags cancel out.
- **Adam**: keeps running averages of the gradient `m` and of its square `v`, corrects their start
  from zero (`m_hat = m / (1 - beta1^t)`), and steps `lr * m_hat / (sqrt(v_hat) + eps)`. Each weight
  gets its own step size of about lr whatever the gradient's scale, which is why Adam escapes
  plateaus that stall SGD (Kingma and Ba, 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"
    lr: float = 0.05
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.name!r}; choose one of {OPTIMIZERS}")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")


class Optimizer:
    """The optimiser's state (velocity, or Adam's moments and step count) for one theta.

    `step(theta, grad)` updates theta in place; the state is the only thing carried between steps.
    """

    def __init__(self, cfg: OptimizerConfig, n_params: int) -> None:
        self.cfg = cfg
        self.t = 0  # steps taken
        self.m = np.zeros(n_params)  # momentum's velocity, or Adam's first moment
        self.v = np.zeros(n_params)  # Adam's second moment
        self._tmp = np.zeros(n_params)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        c, m, v, tmp = self.cfg, self.m, self.v, self._tmp
        self.t += 1
        if c.name == "sgd":
            np.multiply(grad, c.lr, out=tmp)
            theta -= tmp
        elif c.name == "momentum":
            m *= c.momentum
            m += grad  # v = mu * v + g
            np.multiply(m, c.lr, out=tmp)
            theta -= tmp
        else:
            m *= c.beta1
            m += (1.0 - c.beta1) * grad  # m = beta1 * m + (1 - beta1) * g
            v *= c.beta2
            np.multiply(grad, grad, out=tmp)
            tmp *= 1.0 - c.beta2
            v += tmp  # v = beta2 * v + (1 - beta2) * g^2
            bias1 = 1.0 - c.beta1**self.t
            bias2 = 1.0 - c.beta2**self.t
            np.sqrt(v, out=tmp)
            tmp /= np.sqrt(bias2)
            tmp += c.eps  # sqrt(v_hat) + eps
            np.divide(m, tmp, out=tmp)
            tmp *= c.lr / bias1
            theta -= tmp
