"""Path patching: does head A matter *through* head B?

Patching a head's output changes everything downstream of it. Path patching (Wang et al., 2022,
"Interpretability in the wild") changes it only as one receiver sees it: head A's output is swapped
for its version from the other prompt in the input of head B's query (or key, or value) and nowhere
else; every other component reads the stream as it was. The metric then measures the effect of the
single path A -> B (through that door). The receiver "logits" gives A's direct effect on the
answer. That is one patched edge of the graph (core.interp.patching.graph), so every sender ->
receiver pair is one row of a batched edge run (core.interp.patching.edges).

Read a strong A -> B q entry as "B decides *where to look* using what A wrote"; A -> B k as "A
marks the positions B looks for" (an induction head's key reads the previous-token head); A -> B v
as "B moves what A wrote".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.interp.patching.edges import EdgeRunner
from core.interp.patching.engine import PatchEngine
from core.interp.patching.metric import Baseline
from core.interp.patching.node_inputs import DOORS
from core.interp.patching.sweeps import DIRECTIONS

MAX_PAIRS = 4000  # every pair is a batch row per prompt; bigger models pick their senders


@dataclass(frozen=True)
class PathResult:
    """raw / normalised: [sender head, receiver head, door] (NaN where no path exists) and
    direct: [sender head] for sender -> logits. Heads are listed in `heads` order ("L.H")."""

    direction: str
    heads: tuple[tuple[int, int], ...]
    senders: tuple[int, ...]  # indices into heads that were patched as senders
    raw: np.ndarray
    normalised: np.ndarray
    direct_raw: np.ndarray
    direct: np.ndarray
    baseline: Baseline
    seconds: float
    n_pairs: int
    n_forward: int

    @property
    def effect(self) -> np.ndarray:
        """Share of the behaviour the path carries: restored (denoising) or lost (noising)."""
        return self.normalised if self.direction == "denoise" else 1 - self.normalised

    @property
    def direct_effect(self) -> np.ndarray:
        return self.direct if self.direction == "denoise" else 1 - self.direct

    def strongest(self, k: int = 5) -> list[tuple[str, float]]:
        """The k paths with the largest |effect|: ("2.0 -> 3.1 k", effect)."""
        rows = []
        for i, s in enumerate(self.senders):
            a = self.heads[s]
            for j, b in enumerate(self.heads):
                for d, door in enumerate(DOORS):
                    e = self.effect[i, j, d]
                    if np.isfinite(e):
                        rows.append((f"{a[0]}.{a[1]} -> {b[0]}.{b[1]} {door}", float(e)))
            if np.isfinite(self.direct_effect[i]):
                rows.append((f"{a[0]}.{a[1]} -> logits", float(self.direct_effect[i])))
        return sorted(rows, key=lambda t: -abs(t[1]))[:k]


def n_pairs(n_layers: int, n_heads: int, senders=None) -> int:
    """How many sender -> receiver pairs path patching runs."""
    heads = [(layer, h) for layer in range(n_layers) for h in range(n_heads)]
    chosen = range(len(heads)) if senders is None else senders
    return sum(3 * n_heads * (n_layers - 1 - heads[i][0]) + 1 for i in chosen)


def path_patch_all(engine: PatchEngine, direction: str = "noise", senders: list[int] | None = None,
                   progress=None) -> PathResult:
    """Path-patch every sender head (or the listed ones, indices into the heads in order) into every
    later head's q, k and v, and into the logits."""
    source, target = DIRECTIONS[direction]
    start_time = time.perf_counter()
    runner = EdgeRunner(engine, source, target)
    g, c = runner.graph, engine.cfg
    heads = tuple(g.heads())
    chosen = tuple(range(len(heads))) if senders is None else tuple(senders)
    if n_pairs(c.n_layers, c.n_heads, chosen) > MAX_PAIRS:
        raise ValueError(f"{n_pairs(c.n_layers, c.n_heads, chosen):,} pairs is too many: pick fewer senders.")
    pairs = []  # (sender index in chosen, receiver head index or -1 for logits, door, receiver row)
    for i, s in enumerate(chosen):
        layer, h = heads[s]
        for j, (rl, rh) in enumerate(heads):
            if rl > layer:
                for d, door in enumerate(DOORS):
                    pairs.append((i, j, d, g.head_receiver(rl, rh, door)))
        pairs.append((i, -1, 0, g.logits))
    masks_needed = [(r, g.head_sender(*heads[chosen[i]])) for i, _, _, r in pairs]
    values = np.empty((len(pairs), engine.task.n_batch))
    step = max(1, runner.rows_per_pass() // engine.task.n_batch)
    before = engine.n_forward
    for lo in range(0, len(pairs), step):
        chunk = masks_needed[lo: lo + step]
        masks = np.zeros((len(chunk), g.n_receivers, g.n_senders), dtype=np.float32)
        for k, (r, s) in enumerate(chunk):
            masks[k, r, s] = 1.0
        values[lo: lo + len(chunk)] = runner.run(masks)
        if progress is not None:
            progress(min(1.0, (lo + len(chunk)) / len(pairs)))
    raw = np.full((len(chosen), len(heads), 3), np.nan)
    direct_raw = np.full(len(chosen), np.nan)
    for (i, j, d, _), v in zip(pairs, values.mean(1), strict=True):
        if j < 0:
            direct_raw[i] = v
        else:
            raw[i, j, d] = v
    b = engine.baseline
    return PathResult(direction, heads, chosen, raw, b.normalise(raw), direct_raw, b.normalise(direct_raw), b,
                      time.perf_counter() - start_time, len(pairs), engine.n_forward - before)
