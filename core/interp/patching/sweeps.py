"""Patching sweeps: patch every component in turn and map the metric it gives.

Two directions answer two different questions:

- denoising (run the corrupted prompt, copy one activation in from the clean run): is this
  activation *sufficient* to bring the behaviour back? 1 = all of it comes back.
- noising (run the clean prompt, copy one activation in from the corrupted run): is this activation
  *necessary*? 0 = the behaviour is gone without it; 1 = nothing lost.

A component can be necessary without being sufficient (one link of a chain) or sufficient without
being necessary (one of two redundant routes), so the two maps differ, and both are worth reading.

Sweeps (each a list of patches for core.interp.patching.engine):
- stream: the residual stream at every layer (the lab's layers: "embed" is the stream before block
  0, layer L the stream after block L) and every position;
- attn_out / mlp_out: what each block's attention or MLP writes, at every layer and position;
- heads: each head's output z (before W_O), at every position at once;
- heads_by_pos: each head's output at one position;
- head_parts: each head's queries, keys, values or attention pattern, at every position at once
  (which input of the head carries the difference?).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.interp.patching.engine import Patch, PatchEngine, Site
from core.interp.patching.metric import Baseline
from core.models import act_name
from core.models.hook_names import short_label, stream_hook, stream_layers

SWEEPS = ("stream", "attn_out", "mlp_out", "heads", "heads_by_pos", "head_parts")
DIRECTIONS = {"denoise": ("clean", "corrupt"), "noise": ("corrupt", "clean")}  # -> (source, target)
PARTS = ("q", "k", "v", "pattern")


@dataclass(frozen=True)
class SweepResult:
    """raw and normalised: [panel, row, col] mean logit difference over the batch (and normalised).

    panels: ("output",), or PARTS for head_parts. rows / cols: labels; hooks: the hook point of each
    row (of panel 0); row_keys: (layer, head) or (layer, None) per row."""

    kind: str
    direction: str
    raw: np.ndarray
    normalised: np.ndarray
    panels: tuple[str, ...]
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    hooks: tuple[str, ...]
    row_keys: tuple[tuple[int, int | None], ...]
    baseline: Baseline
    seconds: float
    n_forward: int
    n_patches: int

    @property
    def effect(self) -> np.ndarray:
        """How much each patch moved the metric away from the target run, normalised: for
        denoising the share restored (normalised), for noising the share destroyed (1 - normalised)."""
        return self.normalised if self.direction == "denoise" else 1 - self.normalised


def _stream_rows(n_layers: int):
    rows = stream_layers(n_layers)
    return [stream_hook(layer) for layer in rows], [short_label(r) for r in rows], \
        [(r, None) for r in rows]


def sweep_patches(kind: str, n_layers: int, n_heads: int, n_pos: int):
    """(patches [panel][row][col], panels, row labels, row hooks, row keys, col labels kind) for a sweep."""
    pos = range(n_pos)
    layers = range(n_layers)
    per_layer = [(layer, None) for layer in layers]
    if kind == "stream":
        hooks, labels, keys = _stream_rows(n_layers)
        return [[[(Site(h, p),) for p in pos] for h in hooks]], ("output",), labels, hooks, keys, "pos"
    if kind in ("attn_out", "mlp_out"):
        hooks = [act_name(kind, layer) for layer in layers]
        grid = [[[(Site(h, p),) for p in pos] for h in hooks]]
        return grid, ("output",), [str(layer) for layer in layers], hooks, per_layer, "pos"
    heads = [(layer, h) for layer in layers for h in range(n_heads)]
    labels = [f"{layer}.{h}" for layer, h in heads]
    if kind == "heads_by_pos":
        hooks = [act_name("z", layer) for layer, _ in heads]
        grid = [[[(Site(act_name("z", layer), p, h),) for p in pos] for layer, h in heads]]
        return grid, ("output",), labels, hooks, heads, "pos"
    parts = {"heads": ("z",), "head_parts": PARTS}.get(kind)
    if parts is None:
        raise ValueError(f"Unknown sweep {kind!r}; one of {SWEEPS}")
    grid = [[[(Site(act_name(part, layer), None, h),) for h in range(n_heads)] for layer in layers]
            for part in parts]
    panels = ("output",) if kind == "heads" else PARTS
    hooks = [act_name(parts[0], layer) for layer in layers]
    return grid, panels, [str(layer) for layer in layers], hooks, per_layer, "head"


def run_sweep(engine: PatchEngine, kind: str, direction: str = "denoise", *, progress=None,
              skip_noops: bool = True) -> SweepResult:
    """Run every patch of a sweep through the engine in one go."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {tuple(DIRECTIONS)}, not {direction!r}")
    source, target = DIRECTIONS[direction]
    c = engine.cfg
    grid, panels, rows, hooks, keys, col_kind = sweep_patches(kind, c.n_layers, c.n_heads, engine.task.n_pos)
    flat: list[Patch] = [p for panel in grid for row in panel for p in row]
    before, start = engine.n_forward, time.perf_counter()
    values = engine.run(flat, source=source, target=target, progress=progress, skip_noops=skip_noops)
    shape = (len(grid), len(grid[0]), len(grid[0][0]))
    raw = values.mean(1).reshape(shape)  # mean over the batch
    cols = engine.task.labels if col_kind == "pos" else tuple(f"head {h}" for h in range(c.n_heads))
    return SweepResult(kind, direction, raw, engine.baseline.normalise(raw), panels, tuple(rows), tuple(cols),
                       tuple(hooks), tuple(keys), engine.baseline, time.perf_counter() - start,
                       engine.n_forward - before, len(flat))
