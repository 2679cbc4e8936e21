"""Patching a model whose weights are somewhere else: attribution first, exact patches on a budget.

The engine (core.interp.patching.engine) patches hundreds of components in a few batched passes
by reaching into the model here: prefix KV caches, a torch.where per hook point. A model on NDIF
runs one request per trace instead, each a round trip and a queue wait, so a sweep there goes:

1. Attribution patching (core.models.backend.attribution_scores; Nanda, 2023) in one request:
   one forward pass of each run and one backward pass of the target run estimate, for every
   component at once, how much patching it would move the metric. Only one number per component
   comes back.
2. Exact patches for the components the estimate ranks first, at most `budget` of them
   (core.models.remote.MAX_REMOTE_PATCH_RUNS): each is one request that writes the source run's
   activation into the target run (a Write with mode "set": the activation travels with the
   request) and returns only the two answer logits of every prompt.
3. Patches that cannot change anything cost nothing: before the first position where the clean
   and corrupted prompts differ, every activation is identical in both runs (attention only looks
   back), so a patch there leaves the target run's metric as it was, exactly. The engine skips
   them the same way.

Components outside the budget stay unmeasured (NaN): the page draws the exact values it has and
says how many it patched. The numbers it has are the engine's: the tests compare them to 1e-4.

What stays local: q, k and v live inside the attention function, where nnsight has no hook point,
so the "head q, k, v, pattern" sweep and AtP*'s QK fix need the model here; path patching and
circuit discovery patch thousands of edges through recomputed inputs, far beyond a request budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.interp.patching.attribution import AttributionResult
from core.interp.patching.metric import Baseline
from core.interp.patching.sweeps import DIRECTIONS, SweepResult, sweep_patches
from core.interp.patching.tasks import PatchingTask
from core.models.backend import Write, attribution_scores, lens_logits
from core.models.hooked_lm import has_weights  # noqa: F401  (the pages ask reads.has_weights)

SWEEPS = ("stream", "attn_out", "mlp_out", "heads", "heads_by_pos")  # what a remote sweep offers
LOCAL_ONLY = ("head_parts",)


def _metric(lm, tokens: torch.Tensor, answers: torch.Tensor, writes=()) -> np.ndarray:
    """logit(right) - logit(wrong) at the last position of each row [batch], under `writes`."""
    with lm.hooks(list(writes)):
        lens = lens_logits(lm, tokens, [lm.cfg.n_layers - 1], token_ids=answers)  # logits [1, batch, 2]
    return (lens.logits[0, :, 0].double() - lens.logits[0, :, 1].double()).numpy()


def baseline(lm, task: PatchingTask) -> Baseline:
    """The clean and corrupted runs' logit differences, in one request."""
    rows = _metric(lm, torch.cat([task.clean, task.corrupt]), task.answers.repeat(2, 1))
    clean, corrupt = rows[: task.n_batch], rows[task.n_batch:]
    return Baseline(float(clean.mean()), float(corrupt.mean()), clean, corrupt)


@dataclass(frozen=True)
class BudgetSweep:
    """A sweep on a budget: `result` holds the exact raw / normalised values where known (NaN
    elsewhere); `estimate` the attribution estimate of every cell, normalised like the exact ones."""

    result: SweepResult
    estimate: np.ndarray  # [panel, row, col]
    ran: np.ndarray  # [panel, row, col] bool: patched exactly by a run of its own
    noop: np.ndarray  # [panel, row, col] bool: known exactly without a run (before the first difference)
    budget: int

    @property
    def measured(self) -> np.ndarray:
        return self.ran | self.noop

    @property
    def n_runs(self) -> int:
        return int(self.ran.sum())

    @property
    def n_noops(self) -> int:
        return int(self.noop.sum())

    @property
    def n_cells(self) -> int:
        return int(self.ran.size)


def _sites(kind: str, cfg, n_pos: int):
    """[(hook name, position or None, head or None)] per cell, in the sweep's [panel][row][col] order."""
    grid, panels, rows, hooks, keys, col_kind = sweep_patches(kind, cfg.n_layers, cfg.n_heads, n_pos)
    cells = [(patch[0].hook, patch[0].pos, patch[0].head) for panel in grid for row in panel for patch in row]
    shape = (len(grid), len(grid[0]), len(grid[0][0]))
    return cells, shape, panels, rows, hooks, keys, col_kind


def _estimates(att, cells) -> np.ndarray:
    """Per cell, the batch-mean attribution estimate of the change in the target metric."""
    out = np.empty(len(cells))
    for i, (name, pos, head) in enumerate(cells):
        e = att.estimates[name].double()  # [batch, pos] or [batch, pos, head]
        if head is not None:
            e = e[..., head]
        out[i] = float((e[:, pos] if pos is not None else e.sum(1)).mean())
    return out


def _write(name: str, pos: int | None, head: int | None, source: torch.Tensor) -> Write:
    """The patch as a write: the source run's activation at this site replaces the target's."""
    if head is None:
        return Write(name, source[:, pos: pos + 1], mode="set", positions=(pos,))  # [batch, 1, d_model]
    if pos is None:
        return Write(name, source[:, :, head], mode="set", head=head)  # [batch, pos, d_head]
    return Write(name, source[:, pos: pos + 1, head], mode="set", positions=(pos,), head=head)


def budget_sweep(lm, task: PatchingTask, kind: str, direction: str, budget: int, *,
                 progress=None) -> BudgetSweep:
    """A sweep of `kind` (one of SWEEPS) on a budget of exact patched runs (module docstring)."""
    if kind not in SWEEPS:
        raise ValueError(f"A sweep on a budget offers {SWEEPS}; {kind!r} needs the model here.")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {tuple(DIRECTIONS)}, not {direction!r}")
    started = time.perf_counter()
    source, target = DIRECTIONS[direction]
    tokens = {"clean": task.clean, "corrupt": task.corrupt}
    cells, shape, panels, rows, hooks, keys, col_kind = _sites(kind, lm.cfg, task.n_pos)
    names = list(dict.fromkeys(c[0] for c in cells))
    att = attribution_scores(lm, task.clean, task.corrupt, names, task.answers[:, 0], task.answers[:, 1],
                             direction=direction)
    clean_m, corrupt_m = att.clean_metric.double().numpy(), att.corrupt_metric.double().numpy()
    base = Baseline(float(clean_m.mean()), float(corrupt_m.mean()), clean_m, corrupt_m)
    target_rows = clean_m if target == "clean" else corrupt_m
    estimate = float(target_rows.mean()) + _estimates(att, cells)  # [cell] estimated patched metric
    diff = task.differing_positions()
    first = diff[0] if diff else task.n_pos
    raw = np.full(len(cells), np.nan)
    noop = np.array([pos is not None and pos < first for _, pos, _ in cells])
    raw[noop] = float(target_rows.mean())
    order = [i for i in np.argsort(-np.abs(estimate - float(target_rows.mean())), kind="stable")
             if not noop[i]][:budget]
    if order:
        need = sorted({cells[i][0] for i in order})
        with torch.no_grad():
            _, cache = lm.run_with_cache(tokens[source], names=need,
                                         stop_at_layer=_stop(need, lm.cfg.n_layers))  # no logits
        for done, i in enumerate(order, start=1):
            name, pos, head = cells[i]
            patch = _write(name, pos, head, cache[name])
            raw[i] = float(_metric(lm, tokens[target], task.answers, [patch]).mean())
            if progress is not None:
                progress(done / len(order))
    cols = task.labels if col_kind == "pos" else tuple(f"head {h}" for h in range(lm.cfg.n_heads))
    result = SweepResult(kind, direction, raw.reshape(shape), base.normalise(raw.reshape(shape)), panels,
                         tuple(rows), tuple(cols), tuple(hooks), tuple(keys), base,
                         time.perf_counter() - started, len(order), len(cells))
    ran = np.zeros(len(cells), dtype=bool)
    ran[order] = True
    return BudgetSweep(result, base.normalise(estimate.reshape(shape)), ran.reshape(shape),
                       noop.reshape(shape), budget)


def _stop(names, n_layers: int) -> int | None:
    from core.models.hook_names import layer_of

    layers = [layer_of(n) for n in names]
    return None if any(x is None for x in layers) else min(n_layers, max(layers) + 1)


def attribution_result(sweep: BudgetSweep, name_of=None) -> AttributionResult:
    """Estimate against exact (both as the sweep's effect: share restored or destroyed) for the
    cells patched by a run of their own; AtP* is AtP here (its QK fix needs q and k).
    name_of(panel, row, col) words a cell (default "row @ col")."""
    r = sweep.result
    est = sweep.estimate if r.direction == "denoise" else 1 - sweep.estimate
    name_of = name_of or (lambda panel, row, col: f"{row} @ {col}")
    cells = list(zip(*np.nonzero(sweep.ran), strict=True))
    names = tuple(name_of(r.panels[p], r.rows[i], r.cols[j]) for p, i, j in cells)
    exact = np.array([float(r.effect[c]) for c in cells])
    atp = np.array([float(est[c]) for c in cells])
    return AttributionResult(r.direction, names, ("output",) * len(names), exact, atp, atp, r.seconds)
