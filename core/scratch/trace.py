"""Backprop by hand, for one example: every number of one forward and one backward pass.

Pick one training point (x1, x2) with label y. The **forward pass** goes up the network; for each
unit j of a layer:

    z_j = b_j + sum_i a_i * w_ij        (its pre-activation: a weighted vote of the layer below)
    a_j = f(z_j)                        (its activation; the output unit uses the sigmoid, p = a_out)

The **backward pass** comes back down with one number per unit, delta_j = dL/dz_j:

    at the output:     delta_out = dL/dp * sigmoid'(z_out)      (= p - y for cross-entropy)
    below it:          delta_i = f'(z_i) * sum_j w_ij * delta_j (what unit i's output costs,
                                                                 through every unit it feeds)

and then every weight's gradient is the product of the two numbers at its ends:

    dL/dw_ij = a_i * delta_j            dL/db_j = delta_j

A weight whose input was 0, or whose destination unit has a zero slope (a dead ReLU, a saturated
tanh), gets no gradient at all. The **update** is one step of plain gradient descent on this one
example, `w <- w - lr * dL/dw`: for a small enough lr the loss on this example goes down (on
others it may go up, which is why training averages the gradient over many examples).

This module computes it all with explicit loops over units, separately from the vectorised
`core.scratch.mlp.backward`, and the tests check that the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.scratch.mlp import Architecture, activate, forward, sigmoid, slope, unflatten


def unit_name(arch: Architecture, layer: int, unit: int) -> str:
    """x1, x2 for inputs; h1, h2 (or h1.2 = layer 1 unit 2 when deeper) for hidden units; out."""
    if layer == 0:
        return f"x{unit}"
    if layer == arch.n_layers:
        return "out"
    return f"h{unit}" if arch.n_layers == 2 else f"h{layer}.{unit}"


@dataclass(frozen=True)
class UnitTrace:
    layer: int  # 0 = input, arch.n_layers = output
    unit: int  # from 1
    name: str
    a: float  # activation (the input value for layer 0)
    z: float | None = None  # pre-activation
    slope: float | None = None  # f'(z)
    dL_da: float | None = None  # what this unit's output costs
    delta: float | None = None  # dL/dz


@dataclass(frozen=True)
class WeightTrace:
    name: str  # "W1[1,2]" or "b1[2]"
    layer: int  # weight layer, from 1
    src: str  # unit name below, or "bias"
    dst: str  # unit name above
    value: float
    a_in: float  # the input it multiplies (1 for a bias)
    delta_out: float  # delta of the unit it feeds
    grad: float  # dL/dw = a_in * delta_out
    new_value: float  # value - lr * grad


@dataclass(frozen=True)
class Trace:
    x: tuple[float, ...]
    y: float
    p: float
    loss: float
    loss_name: str
    dL_dp: float
    lr: float
    loss_after: float  # this example's loss after the update
    units: tuple[UnitTrace, ...]
    weights: tuple[WeightTrace, ...]  # in theta's order

    def gradient(self) -> np.ndarray:
        """The per-weight gradients as a vector in theta's layout."""
        return np.array([w.grad for w in self.weights])


def trace_example(theta: np.ndarray, arch: Architecture, x: np.ndarray, y: float, lr: float) -> Trace:
    """One forward and backward pass on the single example (x, y), and the SGD step it implies."""
    layers = unflatten(theta, arch.sizes)
    L = arch.n_layers
    a = [[float(v) for v in x]]  # a[l][i]: activation of unit i in layer l
    z: list[list[float]] = [[]]
    for l, (W, b) in enumerate(layers, start=1):
        n_in, n_out = W.shape
        z_l = [float(b[j]) + sum(a[l - 1][i] * float(W[i, j]) for i in range(n_in)) for j in range(n_out)]
        if l == L:
            a_l = [float(sigmoid(np.float64(v))) for v in z_l]
        else:
            a_l = [float(activate(arch.activation, np.float64(v))) for v in z_l]
        z.append(z_l)
        a.append(a_l)
    p, z_out = a[L][0], z[L][0]
    if arch.loss == "bce":
        loss = float(np.logaddexp(0.0, z_out) - y * z_out)  # = -(y log p + (1 - y) log(1 - p))
        dL_dp = (p - y) / (p * (1.0 - p)) if 0.0 < p < 1.0 else math.copysign(math.inf, p - y)
        delta_out = p - y  # dL/dp * p (1 - p), simplified so it stays finite
    else:
        loss = (p - y) ** 2
        dL_dp = 2.0 * (p - y)
        delta_out = dL_dp * p * (1.0 - p)
    slopes: list[list[float]] = [[] for _ in range(L + 1)]
    dL_da: list[list[float]] = [[] for _ in range(L + 1)]
    delta: list[list[float]] = [[] for _ in range(L + 1)]
    slopes[L], dL_da[L], delta[L] = [p * (1.0 - p)], [dL_dp], [delta_out]
    for l in range(L - 1, 0, -1):
        W = layers[l][0]  # weights from layer l up to layer l + 1
        for i in range(W.shape[0]):
            cost = sum(float(W[i, j]) * delta[l + 1][j] for j in range(W.shape[1]))
            s = float(slope(arch.activation, np.float64(z[l][i]), np.float64(a[l][i])))
            dL_da[l].append(cost)
            slopes[l].append(s)
            delta[l].append(s * cost)
    units = [UnitTrace(0, i + 1, unit_name(arch, 0, i + 1), v) for i, v in enumerate(a[0])]
    for l in range(1, L + 1):
        units += [UnitTrace(l, j + 1, unit_name(arch, l, j + 1), a[l][j], z[l][j], slopes[l][j], dL_da[l][j],
                            delta[l][j]) for j in range(len(z[l]))]
    weights = []
    for l, (W, b) in enumerate(layers, start=1):
        n_in, n_out = W.shape
        for i in range(n_in):
            for j in range(n_out):
                w, g = float(W[i, j]), a[l - 1][i] * delta[l][j]  # input times delta
                src, dst = unit_name(arch, l - 1, i + 1), unit_name(arch, l, j + 1)
                weights.append(WeightTrace(f"W{l}[{i + 1},{j + 1}]", l, src, dst, w, a[l - 1][i], delta[l][j],
                                           g, w - lr * g))
        for j in range(n_out):
            w, g = float(b[j]), delta[l][j]
            weights.append(WeightTrace(f"b{l}[{j + 1}]", l, "bias", unit_name(arch, l, j + 1), w, 1.0, g, g,
                                       w - lr * g))
    stepped = np.array([w.new_value for w in weights])
    z_new = float(forward(stepped, arch, np.asarray(x, dtype=float)[None, :]).zs[-1][0, 0])
    if arch.loss == "bce":
        loss_after = float(np.logaddexp(0.0, z_new) - y * z_new)
    else:
        loss_after = float((sigmoid(np.float64(z_new)) - y) ** 2)
    return Trace(tuple(float(v) for v in x), float(y), p, loss, arch.loss, dL_dp, lr, loss_after,
                 tuple(units), tuple(weights))
