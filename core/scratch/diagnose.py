"""Failure modes: when a network does not learn, there is usually a nameable reason.

- **Diverged.** The learning rate is so large that each step overshoots the valley it aims at, and
  lands where the slope is steeper still: the loss grows until it is infinite or NaN. Detected as a
  loss that is not finite, a loss over ten times its starting value, or a weight beyond 10,000.
- **Stuck on a plateau.** The loss stops falling (it stays within 1% for the last quarter of
  training) before the data is separated. A loss of ln 2 = 0.693 with cross-entropy means the
  network answers 0.5 for everything. Typical causes are the three below, a local minimum (XOR with
  only two hidden units has some), or a learning rate too small to cross a flat region.
- **Dead ReLUs.** A ReLU unit whose pre-activation is negative for *every* example outputs 0 and
  has slope 0, so its gradient is 0 and no step can ever revive it.
- **Symmetric units.** Units in one layer with identical incoming weights, bias and outgoing weights
  compute the same function and, by the chain rule, receive identical gradients: they stay twins
  forever, and the layer works like a single unit. All-zero initialisation makes every unit a twin.
- **Saturated units.** A tanh or sigmoid unit whose |z| is large for every example sits on a flat
  part of its curve; its slope, and so every gradient through it, is almost zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.scratch.mlp import Architecture, forward, unflatten

SOLVED_ACCURACY = 0.95  # at least this fraction of training points right counts as solved
PLATEAU_TOLERANCE = 0.01  # relative change of the loss that counts as "not moving"
SATURATION_Z = {"tanh": 3.0, "sigmoid": 5.0}  # |z| beyond which the slope is under 1% (3%) of its peak


@dataclass(frozen=True)
class Finding:
    kind: str  # "solved" | "diverged" | "stuck" | "learning" | "dead_relu" | "symmetric" | "saturated"
    severity: str  # "success" | "error" | "warning" | "info"
    title: str
    detail: str


@dataclass(frozen=True)
class Diagnosis:
    outcome: str  # "solved" | "diverged" | "stuck" | "learning"
    findings: tuple[Finding, ...]
    diverged_at: int | None
    plateau_since: int | None
    dead_units: tuple[tuple[int, int], ...]  # (hidden layer, unit), both from 1
    symmetric_groups: tuple[tuple[int, tuple[int, ...]], ...]  # (hidden layer, units that are twins)
    saturated_units: tuple[tuple[int, int], ...]


def plateau_since(losses: np.ndarray, rel: float = PLATEAU_TOLERANCE) -> int | None:
    """The first epoch from which the loss stays within `rel` of itself to the end, if that covers
    at least the last quarter of training; else None (the loss is still moving)."""
    n = len(losses)
    if n < 20:
        return None
    hi = np.maximum.accumulate(losses[::-1])[::-1]  # max of losses[e:]
    lo = np.minimum.accumulate(losses[::-1])[::-1]
    still = (hi - lo) <= rel * np.maximum(hi, 1e-12) + 1e-9
    moving = np.flatnonzero(~still)
    first = int(moving[-1]) + 1 if len(moving) else 0  # after the last epoch that was still moving
    return first if first <= n - 1 - max(10, (n - 1) // 4) else None


def dead_relu_units(arch: Architecture, theta: np.ndarray, X: np.ndarray) -> list[tuple[int, int]]:
    if arch.activation != "relu":
        return []
    fwd = forward(theta, arch, X)
    return [(l + 1, j + 1) for l, z in enumerate(fwd.zs[:-1]) for j in np.flatnonzero((z <= 0).all(axis=0))]


def saturated_units(arch: Architecture, theta: np.ndarray, X: np.ndarray) -> list[tuple[int, int]]:
    limit = SATURATION_Z.get(arch.activation)
    if limit is None:
        return []
    fwd = forward(theta, arch, X)
    return [(l + 1, j + 1) for l, z in enumerate(fwd.zs[:-1])
            for j in np.flatnonzero((np.abs(z) > limit).all(axis=0))]


def symmetric_groups(arch: Architecture, theta: np.ndarray,
                     tol: float = 1e-9) -> list[tuple[int, tuple[int, ...]]]:
    """Units of a hidden layer whose incoming weights, bias and outgoing weights are all equal."""
    layers = unflatten(theta, arch.sizes)
    groups = []
    for l in range(arch.n_layers - 1):
        (W, b), (W_next, _) = layers[l], layers[l + 1]
        sig = np.concatenate([W.T, b[:, None], W_next], axis=1)  # [units, n_in + 1 + n_out]
        scale = tol * (1.0 + np.abs(sig).max())
        seen: set[int] = set()
        for j in range(sig.shape[0]):
            if j in seen:
                continue
            twins = [k for k in range(j, sig.shape[0]) if np.abs(sig[k] - sig[j]).max() <= scale]
            seen.update(twins)
            if len(twins) > 1:
                groups.append((l + 1, tuple(k + 1 for k in twins)))
    return groups


def _units(pairs, arch: Architecture) -> str:
    by_layer: dict[int, list[int]] = {}
    for l, j in pairs:
        by_layer.setdefault(l, []).append(j)
    one = arch.n_layers == 2
    return "; ".join(("" if one else f"layer {l}: ") + ("unit " if len(js) == 1 else "units ")
                     + ", ".join(map(str, js)) for l, js in by_layer.items())


def diagnose(arch: Architecture, theta: np.ndarray, X: np.ndarray, y: np.ndarray, losses: np.ndarray,
             accuracy: float, diverged_at: int | None = None, diverged_why: str = "", lr: float = 0.0,
             solved_at: int | None = None) -> Diagnosis:
    """Name what happened in a finished run. theta is the final (last finite) parameter vector and
    losses[e] the loss after e epochs."""
    found: list[Finding] = []
    n_hidden = sum(arch.sizes[1:-1])
    dead = dead_relu_units(arch, theta, X)
    twins = symmetric_groups(arch, theta)
    saturated = saturated_units(arch, theta, X)
    final, since = float(losses[-1]), None
    if diverged_at is not None:
        outcome = "diverged"
        found.append(Finding(
            "diverged", "error", f"Diverged at epoch {diverged_at}",
            f"{diverged_why} Each step overshot and landed where the slope was steeper still. Lower the "
            f"learning rate (now {lr:g}). The pictures show the last finite weights, after epoch "
            f"{diverged_at - 1}."))
    elif accuracy >= SOLVED_ACCURACY:
        outcome = "solved"
        when = f"; {SOLVED_ACCURACY:.0%} was reached by epoch {solved_at}" if solved_at is not None else ""
        found.append(Finding("solved", "success", f"Solved: {accuracy:.0%} of points right",
                             f"Final loss {final:.4g}{when}."))
    elif (since := plateau_since(losses)) is not None:
        outcome = "stuck"
        chance = arch.loss == "bce" and abs(final - np.log(2)) < 0.01
        found.append(Finding(
            "stuck", "warning", f"Stuck on a plateau since epoch {since}",
            f"The loss has stayed at {final:.4g} (within 1%) since epoch {since}, with {accuracy:.0%} of "
            f"points right.{' That is the loss of answering 0.5 for everything.' if chance else ''} Look "
            "below for a cause, or try another seed, more units, or a larger learning rate."))
    else:
        outcome = "learning"
        found.append(Finding(
            "learning", "info", f"Still learning: {accuracy:.0%} right",
            f"The loss is still falling at epoch {len(losses) - 1} ({final:.4g}); more epochs or a larger "
            "learning rate should help."))
    bad = "warning" if outcome != "solved" else "info"
    if dead:
        found.append(Finding(
            "dead_relu", bad, f"{len(dead)} of {n_hidden} ReLU units are dead",
            f"Dead: {_units(dead, arch)}. Their pre-activation is negative for every example, so they "
            "output 0 and their gradient is 0: no step can revive them. A smaller learning rate, He init "
            "or another seed helps."))
    for l, units in twins:
        where = "" if arch.n_layers == 2 else f" in layer {l}"
        found.append(Finding(
            "symmetric", bad, f"Symmetric units{where}: units {', '.join(map(str, units))} are identical",
            "They started equal and so received equal gradients at every step: they stay twins and work "
            "like one unit. Random initialisation breaks the symmetry."))
    if saturated and outcome != "solved":
        found.append(Finding(
            "saturated", "warning", f"{len(saturated)} of {n_hidden} units are saturated",
            f"Saturated: {_units(saturated, arch)}. Their |z| is above {SATURATION_Z[arch.activation]:g} "
            f"for every example, where {arch.activation}'s slope is nearly 0, so gradients through them "
            "vanish."))
    return Diagnosis(outcome, tuple(found), diverged_at, since, tuple(dead), tuple(twins), tuple(saturated))
