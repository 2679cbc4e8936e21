"""What the pictures show: the network evaluated over the whole plane, and the data seen from the
hidden layer.

- **Decision boundary.** Run the network on a fine grid of points covering the data: p over the
  grid is the heatmap, and the curve where p = 0.5 is the boundary. It is the *output unit's* line,
  bent by the hidden layers.
- **Each hidden unit's own boundary.** A first-layer unit computes `f(w1 x1 + w2 x2 + b)`: its
  boundary (z = 0) is a straight line, and it says "which side of my line are you on". Deeper units
  combine those half-planes. For XOR, two lines cut the plane into three strips, and the output unit
  only has to say "middle strip or not".
- **Hidden space.** The output unit is a single straight-line classifier, but it reads the last
  hidden layer, not the inputs. Plot each example at its hidden activations: there, XOR's corners
  have moved so that one straight line separates the classes. Learning the hidden layer *is*
  learning a representation in which the problem becomes linear. With two hidden units the axes
  are h1 and h2; with more, the x-axis is the output unit's input `z_out = w . h + b` (the boundary
  is z_out = 0) and the y-axis the direction in which the hidden activations vary most apart from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.scratch.mlp import Architecture, forward, unflatten


@dataclass(frozen=True, eq=False)
class Grid:
    xs: np.ndarray  # [nx] cell centres along x1
    ys: np.ndarray  # [ny] cell centres along x2
    points: np.ndarray  # [ny * nx, 2], x1 varying fastest
    step: tuple[float, float]  # cell width and height


def make_grid(X: np.ndarray, n: int = 60, pad: float = 0.2) -> Grid:
    """An n x n grid over the data's bounding box, widened by `pad` of its size on each side."""
    low, high = X.min(axis=0), X.max(axis=0)
    span = np.maximum(high - low, 1e-6)
    low, high = low - pad * span, high + pad * span
    step = (high - low) / n
    xs = low[0] + step[0] * (np.arange(n) + 0.5)
    ys = low[1] + step[1] * (np.arange(n) + 0.5)
    gx, gy = np.meshgrid(xs, ys)  # [ny, nx] each
    return Grid(xs, ys, np.stack([gx.ravel(), gy.ravel()], axis=1), (float(step[0]), float(step[1])))


@dataclass(frozen=True, eq=False)
class GridView:
    grid: Grid
    p: np.ndarray  # [n_points] the network's output over the grid
    hidden: tuple[np.ndarray, ...]  # per hidden layer, [n_points, units] activations


def grid_view(theta: np.ndarray, arch: Architecture, grid: Grid) -> GridView:
    with np.errstate(all="ignore"):
        fwd = forward(theta, arch, grid.points)
    return GridView(grid, fwd.p, tuple(fwd.acts[1:-1]))


@dataclass(frozen=True, eq=False)
class HiddenSpace:
    u: np.ndarray  # [n] horizontal coordinate of each example
    v: np.ndarray  # [n] vertical coordinate
    u_label: str
    v_label: str
    line: tuple[tuple[float, float], tuple[float, float]] | None  # the output unit's boundary, clipped
    separated: bool  # the output's line puts every example on its class's side


def _clip_line(a: float, b: float, c: float, box: tuple[float, float, float, float]):
    """The segment of a*u + b*v + c = 0 inside box (u0, u1, v0, v1), or None if it misses."""
    u0, u1, v0, v1 = box
    hits = []
    if abs(b) > 1e-12:
        hits += [(u, -(a * u + c) / b) for u in (u0, u1)]
    if abs(a) > 1e-12:
        hits += [(-(b * v + c) / a, v) for v in (v0, v1)]
    eps = 1e-9 * (1 + max(abs(u0), abs(u1), abs(v0), abs(v1)))
    inside = sorted({(round(u, 12), round(v, 12)) for u, v in hits
                     if u0 - eps <= u <= u1 + eps and v0 - eps <= v <= v1 + eps})
    if len(inside) < 2:
        return None
    return (inside[0], inside[-1])


def hidden_space(theta: np.ndarray, arch: Architecture, X: np.ndarray, y: np.ndarray) -> HiddenSpace:
    """The examples as the output unit sees them (the last hidden layer), with its boundary line."""
    fwd = forward(theta, arch, X)
    h = fwd.acts[-2]  # [n, units] the last hidden layer
    w, b = unflatten(theta, arch.sizes)[-1]
    w, b = w[:, 0], float(b[0])  # [units], scalar
    last = f"h{arch.n_layers - 1}." if arch.n_layers > 2 else "h"
    if h.shape[1] == 2:
        u, v = h[:, 0], h[:, 1]
        labels, coef = (f"{last}1", f"{last}2"), (float(w[0]), float(w[1]), b)
    elif h.shape[1] == 1:
        u, v = h[:, 0], np.zeros(len(h))
        labels, coef = (f"{last}1", "(one unit: no second axis)"), (float(w[0]), 0.0, b)
    else:
        u = h @ w + b  # [n] z_out
        norm = np.linalg.norm(w)
        rest = h - np.outer(h @ w, w) / norm**2 if norm > 0 else h  # [n, units] orthogonal to w
        rest = rest - rest.mean(axis=0)
        _, _, vt = np.linalg.svd(rest, full_matrices=False)
        v = rest @ vt[0]
        labels, coef = ("z_out = w . h + b", "main other direction of h"), (1.0, 0.0, 0.0)
    pad_u = 0.1 * max(float(np.ptp(u)), 1e-3)
    pad_v = 0.1 * max(float(np.ptp(v)), 1e-3)
    box = (float(u.min()) - pad_u, float(u.max()) + pad_u, float(v.min()) - pad_v, float(v.max()) + pad_v)
    line = _clip_line(*coef, box)
    separated = bool(np.all((fwd.zs[-1][:, 0] > 0) == (y > 0.5)))
    return HiddenSpace(u, v, labels[0], labels[1], line, separated)
