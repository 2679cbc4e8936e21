"""Training: forward, backward, step, repeated; and what the loop records so you can watch it.

One **epoch** is one pass over the training data. Full-batch training takes one step per epoch on
the exact gradient of the mean loss; mini-batch training shuffles the data and takes one step per
batch of `batch_size` examples, on a noisy estimate of that gradient (cheaper per step, and the noise
can shake a network off a plateau).

A page that must stay responsive gives every run a step budget (`MAX_STEPS` optimiser steps):
small batches make many steps per epoch, so `fit_to_budget` trains fewer epochs than asked and says
so; the diagnosis then knows the run was cut, and does not advise the epochs the budget prevented.

The loop records the loss after every epoch, and a snapshot of every weight at about
`n_snapshots` evenly spaced epochs, so any moment of training can be replayed: the decision
boundary, each unit, the weights' trajectories. It stops at the first sign of divergence and keeps
the last finite weights, so nothing downstream ever sees a NaN. Everything random (the initial
weights, the shuffling) comes from `seed`: the same config always gives the same run.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from core.scratch.diagnose import SOLVED_ACCURACY, Budget, Diagnosis, diagnose
from core.scratch.mlp import (
    ACTIVATIONS,
    INITS,
    LOSSES,
    MAX_LAYERS,
    MAX_UNITS,
    Architecture,
    accuracy,
    forward,
    init_params,
    loss_and_grad,
    loss_value,
)
from core.scratch.optim import OPTIMIZERS, Optimizer, OptimizerConfig

MAX_WEIGHT = 1e4  # a weight beyond this counts as diverged
LOSS_BLOWUP = 10.0  # a loss over this many times the starting loss (+1) counts as diverged
MAX_STEPS = 30_000  # optimiser steps per run; beyond this a run trains fewer epochs (fit_to_budget)


@dataclass(frozen=True)
class TrainConfig:
    hidden: tuple[int, ...] = (4,)  # units per hidden layer: 1 to 3 layers of 1 to 16 units
    activation: str = "tanh"
    loss: str = "bce"
    init: str = "xavier"
    optimizer: str = "adam"
    lr: float = 0.05
    epochs: int = 1000
    batch_size: int = 0  # 0 (or >= the number of points) means full batch
    seed: int = 0
    n_snapshots: int = 100
    epochs_requested: int | None = None  # what was asked for, when a step budget cut it to `epochs`
    max_steps: int = MAX_STEPS  # the step budget that did the cutting

    def __post_init__(self) -> None:
        if not 1 <= len(self.hidden) <= MAX_LAYERS or not all(1 <= h <= MAX_UNITS for h in self.hidden):
            raise ValueError(f"hidden must be 1 to {MAX_LAYERS} layers of 1 to {MAX_UNITS} units, "
                             f"got {self.hidden}")
        for value, allowed in ((self.activation, ACTIVATIONS), (self.loss, LOSSES), (self.init, INITS),
                               (self.optimizer, OPTIMIZERS)):
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {allowed}")
        if not self.lr > 0 or self.epochs < 1 or self.batch_size < 0 or self.n_snapshots < 1:
            raise ValueError("lr must be positive, epochs and n_snapshots at least 1, batch_size at least 0")
        if not math.isfinite(self.lr):
            raise ValueError(f"lr must be finite, got {self.lr}")
        if self.epochs_requested is not None and self.epochs_requested < self.epochs:
            raise ValueError("epochs_requested cannot be below the epochs trained")

    def steps_per_epoch(self, n_points: int) -> int:
        full = self.batch_size == 0 or self.batch_size >= n_points
        return 1 if full else math.ceil(n_points / self.batch_size)

    def budget(self, n_points: int) -> Budget:
        return Budget(self.epochs_requested or self.epochs, self.epochs, self.steps_per_epoch(n_points),
                      self.max_steps)

    def architecture(self, n_inputs: int = 2) -> Architecture:
        return Architecture((n_inputs, *self.hidden, 1), self.activation, self.loss)


def fit_to_budget(cfg: TrainConfig, n_points: int) -> TrainConfig:
    """cfg with its epochs cut so that epochs x steps per epoch stays within cfg.max_steps (the
    epochs asked for are kept in epochs_requested); cfg itself when it fits."""
    per_epoch = cfg.steps_per_epoch(n_points)
    if cfg.epochs * per_epoch <= cfg.max_steps:
        return cfg
    return dataclasses.replace(cfg, epochs=max(1, cfg.max_steps // per_epoch),
                               epochs_requested=cfg.epochs_requested or cfg.epochs)


@dataclass(frozen=True, eq=False)
class TrainResult:
    config: TrainConfig
    arch: Architecture
    losses: np.ndarray  # [epochs_run + 1]: losses[e] is the loss on all points after e epochs
    snapshot_epochs: np.ndarray  # [n_snap] ints, ascending, from 0 to epochs_run
    snapshots: np.ndarray  # [n_snap, n_params]: theta after that many epochs
    snapshot_accuracy: np.ndarray  # [n_snap]
    diverged_at: int | None  # first epoch whose weights were not finite / exploded, else None
    diagnosis: Diagnosis
    steps: int  # optimiser steps taken
    seconds: float  # wall time of the loop (informational)

    @property
    def epochs_run(self) -> int:
        return len(self.losses) - 1

    @property
    def final_theta(self) -> np.ndarray:
        return self.snapshots[-1]

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def final_accuracy(self) -> float:
        return float(self.snapshot_accuracy[-1])

    def snapshot_index(self, epoch: int) -> int:
        """Index of the last snapshot taken at or before `epoch`."""
        return max(0, int(np.searchsorted(self.snapshot_epochs, epoch, side="right")) - 1)


def _why(loss: float, limit: float, theta: np.ndarray) -> str:
    if math.isnan(loss):
        return "The loss became NaN (not a number)."
    if math.isinf(loss):
        return "The loss became infinite."
    if loss > limit:
        return f"The loss exploded to {loss:.3g}."
    return f"A weight reached {np.abs(theta).max():.3g}."


def train(cfg: TrainConfig, X: np.ndarray, y: np.ndarray) -> TrainResult:
    """Train a fresh network on X [n, 2], y [n] (0/1) and record everything needed to replay it."""
    start = time.perf_counter()
    arch = cfg.architecture(X.shape[1])
    theta = init_params(arch, cfg.init, cfg.seed)
    opt = Optimizer(OptimizerConfig(cfg.optimizer, cfg.lr), arch.n_params)
    n = X.shape[0]
    full = cfg.batch_size == 0 or cfg.batch_size >= n
    shuffle = np.random.default_rng([cfg.seed, 1])  # its own stream: changing batches keeps the init
    every = max(1, math.ceil(cfg.epochs / cfg.n_snapshots))
    losses = np.empty(cfg.epochs + 1)
    snaps, snap_epochs = [], []
    previous = theta.copy()
    limit, diverged_at, why, steps = math.inf, None, "", 0
    with np.errstate(all="ignore"):
        for e in range(cfg.epochs + 1):
            if full and e < cfg.epochs:
                loss, grad = loss_and_grad(theta, arch, X, y)
            else:
                fwd = forward(theta, arch, X)
                loss = loss_value(arch.loss, fwd.zs[-1][:, 0], fwd.p, y)
            if e == 0:
                limit = LOSS_BLOWUP * loss + 1.0
            if e > 0 and (not loss <= limit or not np.abs(theta).max() <= MAX_WEIGHT):  # also NaN
                diverged_at, why = e, _why(loss, limit, theta)
                if snap_epochs[-1] != e - 1:  # keep the last finite weights
                    snaps.append(previous.copy())
                    snap_epochs.append(e - 1)
                break
            losses[e] = loss
            if e % every == 0 or e == cfg.epochs:
                snaps.append(theta.copy())
                snap_epochs.append(e)
            if e == cfg.epochs:
                break
            previous[...] = theta
            if full:
                opt.step(theta, grad)
                steps += 1
            else:
                order = shuffle.permutation(n)
                for at in range(0, n, cfg.batch_size):
                    idx = order[at : at + cfg.batch_size]
                    _, grad = loss_and_grad(theta, arch, X[idx], y[idx])
                    opt.step(theta, grad)
                    steps += 1
    seconds = time.perf_counter() - start
    losses = losses[: (diverged_at if diverged_at is not None else cfg.epochs + 1)]
    snapshots = np.array(snaps)  # [n_snap, n_params]
    accs = np.array([accuracy(t, arch, X, y) for t in snapshots])
    reached = np.flatnonzero(accs >= SOLVED_ACCURACY)
    solved_at = int(np.array(snap_epochs)[reached[0]]) if len(reached) else None
    diagnosis = diagnose(arch, snapshots[-1], X, y, losses, float(accs[-1]), diverged_at, why, cfg.lr,
                         solved_at, theta_start=snapshots[0], budget=cfg.budget(n))
    for array in (losses, snapshots, accs):
        array.flags.writeable = False
    return TrainResult(cfg, arch, losses, np.array(snap_epochs), snapshots, accs, diverged_at, diagnosis,
                       steps, seconds)
