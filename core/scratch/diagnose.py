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

**What to try next** is one recommendation, chosen by the evidence, never two that pull against
each other. The first cause that applies decides, in this order:

1. it diverged: lower the learning rate;
2. twin units that were already twins at the start: the initialisation is to blame (random init);
3. dead ReLUs: if they died *during* training a step pushed them off the edge (lower the learning
   rate); if they were dead from the first epoch the learning rate played no part (another seed, or
   more units so that some survive);
4. saturated units: saturated from the start means the initial weights were too large; saturated
   later means the steps grew the weights (lower the learning rate);
5. a plateau with no visible cause: if the gradient is (almost) zero the network sits at a flat
   point, a local minimum or a saddle, that bigger steps do not escape (another seed, more units);
   if the loss kept rising and falling it is bouncing between the walls of a valley (lower the
   learning rate); if it fell a little every epoch it is creeping (raise the learning rate);
6. still learning at the end: more epochs, or, when the page had to cut the epochs to keep its
   step budget, larger batches (fewer steps per epoch, so more epochs fit); a loss that rose on at
   most 1% of the last quarter's epochs (STEADY_SHARE), so that (almost) no step overshot, also
   tolerates a larger learning rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.scratch.mlp import MAX_UNITS, Architecture, forward, loss_and_grad, unflatten

SOLVED_ACCURACY = 0.95  # at least this fraction of training points right counts as solved
PLATEAU_TOLERANCE = 0.01  # relative change of the loss that counts as "not moving"
SATURATION_Z = {"tanh": 3.0, "sigmoid": 5.0}  # |z| beyond which the slope is under 1% (3%) of its peak
FLAT_GRADIENT = 1e-3  # ||dL/dtheta|| below this at the end: a flat point (a minimum or a saddle)
BOUNCING_SHARE = 0.1  # the loss rose on more than this share of the plateau's epochs: bouncing
STEADY_SHARE = 0.01  # the loss rose on at most this share of the last quarter: (almost) no step overshot

ACTIONS = ("lower_lr", "higher_lr", "random_init", "smaller_init", "another_seed", "more_units",
           "more_epochs", "larger_batch")


@dataclass(frozen=True)
class Finding:
    kind: str  # "solved" | "diverged" | "stuck" | "learning" | "dead_relu" | "symmetric" | "saturated"
    severity: str  # "success" | "error" | "warning" | "info"
    title: str
    detail: str  # what was measured; what to do about it is the Advice's job


@dataclass(frozen=True)
class Budget:
    """The epochs a run was asked for and the epochs it got, when a step budget cut them."""

    requested: int
    trained: int
    steps_per_epoch: int
    max_steps: int

    @property
    def cut(self) -> bool:
        return self.trained < self.requested

    def batch_that_fits(self, n_points: int) -> int:
        """The smallest batch size whose steps per epoch let every requested epoch fit the budget."""
        per_epoch = max(1, self.max_steps // self.requested)  # steps per epoch the budget allows
        return math.ceil(n_points / per_epoch)


@dataclass(frozen=True)
class Advice:
    """What to change next. `lr` is the one way the learning rate should move ("lower", "higher",
    or "keep" when it is not to blame); `actions` never contain both lower_lr and higher_lr."""

    cause: str  # "solved" | "diverged" | "symmetric_init" | "dead_in_training" | "dead_from_start" |
    # "saturated_from_start" | "saturated_in_training" | "flat" | "bouncing" | "creeping" |
    # "still_learning" | "cut"
    actions: tuple[str, ...]  # from ACTIONS, the most useful first; () when nothing needs changing
    lr: str  # "lower" | "higher" | "keep"
    gradient_norm: float  # ||dL/dtheta|| on all the data at the final weights
    rise_share: float  # share of epochs in the window looked at (plateau or last quarter) where the loss rose
    fitting_batch: int | None = None  # when cut: the smallest batch size that fits every requested epoch

    def __post_init__(self) -> None:
        unknown = set(self.actions) - set(ACTIONS)
        if unknown:
            raise ValueError(f"unknown actions {unknown}")
        if "lower_lr" in self.actions and "higher_lr" in self.actions:
            raise ValueError("advice cannot both lower and raise the learning rate")
        expected = ("lower" if "lower_lr" in self.actions else
                    "higher" if "higher_lr" in self.actions else "keep")
        if self.lr != expected:
            raise ValueError(f"lr {self.lr!r} does not match the actions {self.actions}")


@dataclass(frozen=True)
class Diagnosis:
    outcome: str  # "solved" | "diverged" | "stuck" | "learning"
    findings: tuple[Finding, ...]
    diverged_at: int | None
    plateau_since: int | None
    dead_units: tuple[tuple[int, int], ...]  # (hidden layer, unit), both from 1
    symmetric_groups: tuple[tuple[int, tuple[int, ...]], ...]  # (hidden layer, units that are twins)
    saturated_units: tuple[tuple[int, int], ...]
    advice: Advice
    dead_from_start: tuple[tuple[int, int], ...] = ()  # the dead units that were already dead at epoch 0
    budget: Budget | None = None


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


def rise_share(losses: np.ndarray) -> float:
    """The share of steps from one epoch to the next on which the loss went up (0 for < 2 epochs)."""
    steps = np.diff(np.asarray(losses, dtype=float))
    return float((steps > 0).mean()) if len(steps) else 0.0


def dead_relu_units(arch: Architecture, theta: np.ndarray, X: np.ndarray) -> list[tuple[int, int]]:
    if arch.activation != "relu":
        return []
    fwd = forward(theta, arch, X)
    return [(l + 1, int(j) + 1) for l, z in enumerate(fwd.zs[:-1])
            for j in np.flatnonzero((z <= 0).all(axis=0))]


def saturated_units(arch: Architecture, theta: np.ndarray, X: np.ndarray) -> list[tuple[int, int]]:
    limit = SATURATION_Z.get(arch.activation)
    if limit is None:
        return []
    fwd = forward(theta, arch, X)
    return [(l + 1, int(j) + 1) for l, z in enumerate(fwd.zs[:-1])
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


def advise(arch: Architecture, *, outcome: str, losses: np.ndarray, plateau: int | None,
           gradient_norm: float, dead: list, dead_from_start: list, twins_from_start: list,
           saturated: list, saturated_from_start: list, budget: Budget | None = None,
           n_points: int = 0) -> Advice:
    """The one recommendation the evidence supports (the order is the module docstring's)."""
    tail = losses[plateau:] if plateau is not None else losses[-max(2, len(losses) // 4):]
    rises = rise_share(tail)
    more_units = ("more_units",) if max(arch.sizes[1:-1]) < MAX_UNITS else ()

    def advice(cause: str, *actions: str, batch: int | None = None) -> Advice:
        lr = "lower" if "lower_lr" in actions else "higher" if "higher_lr" in actions else "keep"
        return Advice(cause, tuple(actions), lr, gradient_norm, rises, batch)

    if outcome == "solved":
        return advice("solved")
    if outcome == "diverged":
        return advice("diverged", "lower_lr")
    if twins_from_start:
        return advice("symmetric_init", "random_init")
    if dead:
        if set(dead) - set(dead_from_start):
            return advice("dead_in_training", "lower_lr", "another_seed")
        return advice("dead_from_start", "another_seed", *more_units)
    if saturated:
        if set(saturated) <= set(saturated_from_start):
            return advice("saturated_from_start", "smaller_init")
        return advice("saturated_in_training", "lower_lr")
    if outcome == "stuck":
        if gradient_norm < FLAT_GRADIENT:
            return advice("flat", "another_seed", *more_units)
        if rises > BOUNCING_SHARE:
            return advice("bouncing", "lower_lr")
        return advice("creeping", "higher_lr")
    steady = ("higher_lr",) if rises <= STEADY_SHARE else ()
    if budget is not None and budget.cut:
        return advice("cut", "larger_batch", *steady, batch=budget.batch_that_fits(n_points))
    return advice("still_learning", "more_epochs", *steady)


def diagnose(arch: Architecture, theta: np.ndarray, X: np.ndarray, y: np.ndarray, losses: np.ndarray,
             accuracy: float, diverged_at: int | None = None, diverged_why: str = "", lr: float = 0.0,
             solved_at: int | None = None, theta_start: np.ndarray | None = None,
             budget: Budget | None = None) -> Diagnosis:
    """Name what happened in a finished run, and advise one next step. theta is the final (last
    finite) parameter vector, theta_start the initial one, losses[e] the loss after e epochs; budget
    says whether a step budget cut the epochs."""
    found: list[Finding] = []
    n_hidden = sum(arch.sizes[1:-1])
    start = theta if theta_start is None else theta_start
    dead = dead_relu_units(arch, theta, X)
    dead_start = [u for u in dead_relu_units(arch, start, X) if u in dead]
    twins = symmetric_groups(arch, theta)
    twins_start = [g for g in symmetric_groups(arch, start) if g in twins]
    saturated = saturated_units(arch, theta, X)
    saturated_start = [u for u in saturated_units(arch, start, X) if u in saturated]
    with np.errstate(all="ignore"):
        gradient_norm = float(np.linalg.norm(loss_and_grad(theta, arch, X, y)[1]))
    final, since = float(losses[-1]), None
    cut = budget is not None and budget.cut
    if diverged_at is not None:
        outcome = "diverged"
        found.append(Finding(
            "diverged", "error", f"Diverged at epoch {diverged_at}",
            f"{diverged_why} Each step overshot and landed where the slope was steeper still (learning "
            f"rate {lr:g}). The pictures show the last finite weights, after epoch {diverged_at - 1}."))
    elif accuracy >= SOLVED_ACCURACY:
        outcome = "solved"
        when = f"; {SOLVED_ACCURACY:.0%} was reached by epoch {solved_at}" if solved_at is not None else ""
        found.append(Finding("solved", "success", f"Solved: {accuracy:.0%} of points right",
                             f"Final loss {final:.4g}{when}."))
    elif (since := plateau_since(losses)) is not None:
        outcome = "stuck"
        chance = arch.loss == "bce" and abs(final - np.log(2)) < 0.01
        half = " That is the loss of answering 0.5 for everything." if chance else ""
        found.append(Finding(
            "stuck", "warning", f"Stuck on a plateau since epoch {since}",
            f"The loss has stayed at {final:.4g} (within {PLATEAU_TOLERANCE:.0%}) since epoch {since}, with "
            f"{accuracy:.0%} of points right.{half} The gradient there has size {gradient_norm:.2g}."))
    else:
        outcome = "learning"
        quarter = losses[-max(2, len(losses) // 4):]
        drop = (quarter[0] - quarter[-1]) / max(abs(quarter[0]), 1e-12)
        stopped = (f"the page stopped it at epoch {budget.trained:,} of the {budget.requested:,} asked "
                   f"for: batches of this size make {budget.steps_per_epoch:,} steps per epoch, and a run "
                   f"may take at most {budget.max_steps:,} steps" if cut
                   else f"training ended at epoch {len(losses) - 1:,}")
        found.append(Finding(
            "learning", "info", f"Still learning: {accuracy:.0%} right",
            f"The loss is still falling ({drop:.1%} lower over the last quarter of training, now "
            f"{final:.4g}) when {stopped}."))
    bad = "warning" if outcome != "solved" else "info"
    if dead:
        one = len(dead) == 1
        start_words = ("" if not dead_start else
                       (" It was" if one else " All of them were") + " dead from the first epoch."
                       if len(dead_start) == len(dead) else
                       f" {len(dead_start)} of them were dead from the first epoch "
                       f"({_units(dead_start, arch)}), the others died during training.")
        if not dead_start:
            start_words = " " + ("It" if one else "They") + " died during training."
        found.append(Finding(
            "dead_relu", bad, f"{len(dead)} of {n_hidden} ReLU units {'is' if one else 'are'} dead",
            f"Dead: {_units(dead, arch)}. {'Its' if one else 'Their'} pre-activation is negative for "
            f"every example, so {'it outputs' if one else 'they output'} 0 and {'its' if one else 'their'} "
            f"gradient is 0: no step can revive {'it' if one else 'them'}.{start_words}"))
    for l, units in twins:
        where = "" if arch.n_layers == 2 else f" in layer {l}"
        origin = ("They were identical from the start, so they received equal gradients at every step"
                  if (l, units) in twins_start else
                  "They became identical during training, and from then on receive equal gradients")
        found.append(Finding(
            "symmetric", bad, f"Symmetric units{where}: units {', '.join(map(str, units))} are identical",
            f"{origin}: they stay twins and work like one unit."))
    if saturated and outcome != "solved":
        origin = (" They were saturated from the first epoch." if set(saturated) <= set(saturated_start)
                  else " They saturated during training.")
        found.append(Finding(
            "saturated", "warning", f"{len(saturated)} of {n_hidden} units are saturated",
            f"Saturated: {_units(saturated, arch)}. Their |z| is above {SATURATION_Z[arch.activation]:g} "
            f"for every example, where {arch.activation}'s slope is nearly 0, so gradients through them "
            f"vanish.{origin}"))
    advice = advise(arch, outcome=outcome, losses=losses, plateau=since, gradient_norm=gradient_norm,
                    dead=dead, dead_from_start=dead_start, twins_from_start=twins_start,
                    saturated=saturated if outcome != "solved" else [], saturated_from_start=saturated_start,
                    budget=budget, n_points=len(X))
    return Diagnosis(outcome, tuple(found), diverged_at, since, tuple(dead), tuple(twins), tuple(saturated),
                     advice, tuple(dead_start), budget)
