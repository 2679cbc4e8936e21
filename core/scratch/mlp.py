"""A multilayer perceptron written by hand: the forward pass, and backpropagation as the chain rule
applied one layer at a time, with no autograd.

**Forward.** Each layer takes the previous layer's activations `a[l-1]` (a row per example) and
computes a *pre-activation* `z[l] = a[l-1] @ W[l] + b[l]`, then an *activation* `a[l] = f(z[l])`
with f one of tanh, sigmoid or ReLU. The last layer has one unit and a sigmoid, so its activation
`p` reads as "the probability of class 1". Without the non-linear f the whole stack would collapse
into one matrix, i.e. one straight line, and no straight line separates XOR.

**Loss.** Binary cross-entropy `L = -mean(y log p + (1 - y) log(1 - p))` or mean squared error
`L = mean((p - y)^2)` (the loss Rumelhart, Hinton and Williams used in 1986).

**Backward.** Backprop never differentiates the whole network at once. It carries one number per
unit backwards, `delta = dL/dz`, "how much the loss would change if this unit's pre-activation
moved a little":

- at the output, for cross-entropy, `delta = (p - y) / N`; for squared error
  `delta = 2 (p - y) / N * p (1 - p)` (the extra `p (1 - p)` is the sigmoid's slope, which is tiny
  when the output is confidently wrong: squared error learns slowly there);
- one layer down, each unit adds up the deltas of the units it feeds, weighted by the connecting
  weights, and multiplies by its own slope: `delta[l] = (delta[l+1] @ W[l+1].T) * f'(z[l])`;
- every weight's gradient is then *its input times its output's delta*:
  `dL/dW[l] = a[l-1].T @ delta[l]` and `dL/db[l] = sum of delta[l]` over the examples.

That is the whole algorithm: one forward sweep storing z and a, one backward sweep turning them
into deltas. The slopes are `1 - a^2` (tanh), `a (1 - a)` (sigmoid) and `1 if z > 0 else 0` (ReLU,
which is why a ReLU unit whose input is negative for every example never learns again).

**Initialisation.** Weights start random so units differ: Xavier (uniform, scaled by fan-in and
fan-out), He (normal, scaled for ReLU), small random (normal, std 0.1), or all zero. All-zero shows
the *symmetry problem*: units that start equal get equal gradients and stay equal forever.

All parameters live in one flat vector `theta` (W1, b1, W2, b2, ... each row-major), so an optimiser
is a few vector operations; `unflatten` gives the per-layer views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVATIONS = ("tanh", "sigmoid", "relu")
LOSSES = ("bce", "mse")
INITS = ("xavier", "he", "small", "zero")
MAX_LAYERS, MAX_UNITS = 3, 16  # the largest network the page trains: 3 hidden layers of 16 units


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z), written with tanh so it never overflows."""
    return 0.5 * (np.tanh(0.5 * z) + 1.0)


def activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")


def slope(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """f'(z), from the pre-activation z and the activation a = f(z) the forward pass kept."""
    if name == "tanh":
        return 1.0 - a * a
    if name == "sigmoid":
        return a * (1.0 - a)
    if name == "relu":
        return (z > 0.0).astype(z.dtype)
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")


@dataclass(frozen=True)
class Architecture:
    """sizes = (inputs, hidden..., 1); `activation` is the hidden layers'; the output is a sigmoid."""

    sizes: tuple[int, ...]
    activation: str = "tanh"
    loss: str = "bce"

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or self.sizes[-1] != 1 or min(self.sizes) < 1:
            raise ValueError(f"sizes must be (inputs, hidden..., 1) with positive sizes, got {self.sizes}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {ACTIVATIONS}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {LOSSES}")

    @property
    def n_layers(self) -> int:
        """Weight layers (hidden layers + the output layer)."""
        return len(self.sizes) - 1

    @property
    def n_params(self) -> int:
        return sum((n_in + 1) * n_out for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True))


def unflatten(theta: np.ndarray, sizes: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W1, b1), (W2, b2), ...] as views into theta: W[l] is [n_in, n_out], b[l] is [n_out]."""
    layers, at = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = theta[at : at + n_in * n_out].reshape(n_in, n_out)  # [n_in, n_out]
        at += n_in * n_out
        b = theta[at : at + n_out]  # [n_out]
        at += n_out
        layers.append((W, b))
    return layers


def param_names(sizes: tuple[int, ...]) -> list[str]:
    """Names in theta's order: "W1[i,j]" connects unit i below to unit j above, "b1[j]" is unit j's
    bias (units counted from 1, as on the page)."""
    names = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        names += [f"W{l}[{i + 1},{j + 1}]" for i in range(n_in) for j in range(n_out)]
        names += [f"b{l}[{j + 1}]" for j in range(n_out)]
    return names


def init_params(arch: Architecture, init: str, seed: int) -> np.ndarray:
    """A fresh theta: weights drawn by `init` from a generator seeded by `seed`, biases zero."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
    rng = np.random.default_rng(seed)
    theta = np.zeros(arch.n_params)
    for W, _b in unflatten(theta, arch.sizes):
        n_in, n_out = W.shape
        if init == "xavier":
            limit = np.sqrt(6.0 / (n_in + n_out))
            W[...] = rng.uniform(-limit, limit, size=W.shape)
        elif init == "he":
            W[...] = rng.normal(0.0, np.sqrt(2.0 / n_in), size=W.shape)
        elif init == "small":
            W[...] = rng.normal(0.0, 0.1, size=W.shape)
    return theta


@dataclass(frozen=True)
class Forward:
    """What the forward pass keeps for the backward pass.

    zs[l] is layer l+1's pre-activation [batch, n_out]; acts[0] is the input X [batch, 2] and
    acts[l] = f(zs[l-1]); acts[-1] is p [batch, 1].
    """

    zs: tuple[np.ndarray, ...]
    acts: tuple[np.ndarray, ...]

    @property
    def p(self) -> np.ndarray:
        return self.acts[-1][:, 0]  # [batch]


def forward(theta: np.ndarray, arch: Architecture, X: np.ndarray) -> Forward:
    zs, acts = [], [X]
    layers = unflatten(theta, arch.sizes)
    for l, (W, b) in enumerate(layers):
        z = acts[-1] @ W + b  # [batch, n_out]
        a = sigmoid(z) if l == len(layers) - 1 else activate(arch.activation, z)
        zs.append(z)
        acts.append(a)
    return Forward(tuple(zs), tuple(acts))


def loss_value(loss: str, z_out: np.ndarray, p: np.ndarray, y: np.ndarray) -> float:
    """The mean loss over the batch. Cross-entropy is computed from the logit z_out, which stays
    finite where log(p) would be log(0)."""
    if loss == "bce":
        return float(np.mean(np.logaddexp(0.0, z_out) - y * z_out))
    return float(np.mean((p - y) ** 2))


def output_delta(loss: str, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dz at the output unit, per example (same shape as p)."""
    n = p.shape[0]
    if loss == "bce":
        return (p - y) / n
    return 2.0 * (p - y) / n * p * (1.0 - p)


def backward(theta: np.ndarray, arch: Architecture, fwd: Forward, y: np.ndarray) -> np.ndarray:
    """dL/dtheta for the mean loss over the batch, in theta's layout. y is [batch] of 0/1."""
    grad = np.empty_like(theta)
    layers = unflatten(theta, arch.sizes)
    grads = unflatten(grad, arch.sizes)
    p = fwd.acts[-1]  # [batch, 1]
    delta = output_delta(arch.loss, p, y[:, None])  # [batch, 1]
    for l in range(arch.n_layers - 1, -1, -1):
        gW, gb = grads[l]
        np.matmul(fwd.acts[l].T, delta, out=gW)  # [n_in, n_out]: input times delta
        gb[...] = delta.sum(axis=0)  # [n_out]
        if l > 0:
            W = layers[l][0]
            delta = (delta @ W.T) * slope(arch.activation, fwd.zs[l - 1], fwd.acts[l])  # [batch, n_in]
    return grad


def loss_and_grad(theta: np.ndarray, arch: Architecture, X: np.ndarray,
                  y: np.ndarray) -> tuple[float, np.ndarray]:
    """One forward and one backward pass: the mean loss and its gradient."""
    fwd = forward(theta, arch, X)
    loss = loss_value(arch.loss, fwd.zs[-1][:, 0], fwd.p, y)
    return loss, backward(theta, arch, fwd, y)


def accuracy(theta: np.ndarray, arch: Architecture, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of examples on the right side of p = 0.5."""
    return float(np.mean((forward(theta, arch, X).p > 0.5) == (y > 0.5)))
