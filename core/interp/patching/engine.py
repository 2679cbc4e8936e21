"""One batched intervention engine: every sweep on this page is a list of patches run through it.

A patch says "in the target run, overwrite these activations with the source run's": for example
the residual stream at layer 2, position 5, or head 3.1's output at every position. Running one
forward pass per patch (the textbook loop) repeats almost all of the work. This engine:

1. runs the clean and the corrupted prompts once, together, and caches every activation a patch
   may read (the sources) and the metric of each run;
2. finds where each patch first changes anything: a patch at positions where the source equals the
   target exactly is a no-op (before the first token where clean and corrupted differ, every
   activation is identical, because attention only looks back), so its result is the target's
   metric, with no forward pass at all;
3. groups the remaining patches by that first position s. Positions before s are the same in every
   patched run, so their keys and values come from one run of the prefix (the KV cache), and each
   patched run computes only positions s.. (a "suffix" run);
4. stacks the patches of a group as rows of one batch (row = prompt x N + patch): one forward pass
   writes every patch into its own rows with one torch.where per hook point;
5. stops after the final norm and reads two columns of the unembedding (core.interp.patching.metric),
   never the d_vocab logits.

Shapes the hooks see in a suffix run of S = n_pos - s positions (R = batch x N rows):
    residual-like (resid_pre/post, attn_out, mlp_out)  [R, S, d_model]
    q, z                                                [R, S, head, d_head]
    k, v (every position, keys from the cache too)      [R, s + S, head, d_head]
    pattern, attn_scores                                [R, head, S, s + S]
Grouped-query models repeat each key/value head to one per query head before the hooks, so k and v
are patched per query head.

`hooks` (the learner's active interventions: a steering vector, ablated heads) apply to every run
the engine makes, the cached clean and corrupted runs, the prefixes and every patched run, before
the patches: so every number is the model's *with* them. A suffix run starts at position s, so a
position-aware write (core.models.backend.Write) is shifted by s there.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from core.interp.patching.metric import Baseline, answer_directions, logit_diff
from core.interp.patching.tasks import PatchingTask
from core.models import HookedLM, act_name
from core.models.backend import Write

MAX_FLOATS = 1 << 25  # activations per forward pass (128 MB of float32): bigger batches are chunked
FINAL = "ln_final.hook_normalized"
SOURCE_SITES = ("resid_pre", "resid_post", "attn_out", "mlp_out", "q", "k", "v", "z", "pattern")


@dataclass(frozen=True)
class Site:
    """Where a patch writes: a hook point, one position or all (None), one head or all (None)."""

    hook: str
    pos: int | None = None
    head: int | None = None


Patch = tuple[Site, ...]


def hook_kind(name: str) -> str:
    """How a hook's activation is laid out: "stream" [R, S, d], "head" [R, S, head, d_head] (q, z),
    "key" [R, all pos, head, d_head] (k, v) or "pattern" [R, head, S, all pos]."""
    site = name.rsplit("hook_", 1)[-1]
    if site in ("q", "z"):
        return "head"
    if site in ("k", "v"):
        return "key"
    if site in ("pattern", "attn_scores"):
        return "pattern"
    return "stream"


class _Stop(Exception):
    """Raised by a hook once everything a run needs has been read."""


@contextmanager
def quiet(lm: HookedLM):
    """Run the model's modules with no hook run active (for the engine's own recomputations)."""
    with lm.no_hooks():
        yield


def default_names(lm: HookedLM) -> list[str]:
    """The hook points whose clean and corrupted activations the engine keeps."""
    names = [act_name(site, layer) for layer in range(lm.cfg.n_layers) for site in SOURCE_SITES]
    return [n for n in names if n in set(lm.hook_names())] + [FINAL]


class PatchEngine:
    """Caches of the clean and corrupted runs of a task, and batched patched runs on top of them."""

    def __init__(self, lm: HookedLM, task: PatchingTask, *, names: Sequence[str] | None = None,
                 max_floats: int = MAX_FLOATS, hooks: Sequence = ()):
        self.lm, self.task, self.max_floats = lm, task, max_floats
        self.cfg = lm.cfg
        self.base_hooks = list(hooks)  # the learner's interventions, under every run
        B = task.n_batch
        self.tokens = {"clean": task.clean, "corrupt": task.corrupt}
        names = list(names or default_names(lm))
        with torch.no_grad(), lm.hooks(self.base_hooks):
            _, cache = lm.run_with_cache(torch.cat([task.clean, task.corrupt]), names=names)
        self.caches: dict[str, dict[str, torch.Tensor]] = {
            "clean": {n: t[:B] for n, t in cache.items()},
            "corrupt": {n: t[B:] for n, t in cache.items()},
        }
        self.u, self.b = answer_directions(lm, task.answers)
        self.rows = {k: logit_diff(self.caches[k][FINAL][:, -1], self.u, self.b).numpy().astype(np.float64)
                     for k in ("clean", "corrupt")}  # [batch] each; float64, like every result
        self.baseline = Baseline(float(self.rows["clean"].mean()), float(self.rows["corrupt"].mean()),
                                 self.rows["clean"], self.rows["corrupt"])
        self._differs: dict[tuple, torch.Tensor] = {}
        self._prefixes: dict[tuple[str, int], DynamicCache] = {}
        self.n_forward = 0  # patched forward passes run so far (for the page and the benchmarks)

    # -- sources --------------------------------------------------------------------------------
    def add_source(self, name: str, cache: Mapping[str, torch.Tensor]) -> None:
        """Another source of activations (e.g. the mean over prompts), [batch, ...] per hook."""
        self.caches[name] = dict(cache)

    def mean_source(self) -> str:
        """A source holding, per position, the mean activation over every clean and corrupted row."""
        if "mean" not in self.caches:
            B = self.task.n_batch
            self.add_source("mean", {n: ((self.caches["clean"][n] + self.caches["corrupt"][n]) / 2)
                                     .mean(0, keepdim=True).expand(B, *t.shape[1:]).contiguous()
                                     for n, t in self.caches["clean"].items()})
        return "mean"

    def _source(self, source: str, name: str) -> torch.Tensor:
        if name not in self.caches[source]:
            raise KeyError(f"{name} was not cached; add it to the engine's names")
        return self.caches[source][name]

    # -- where a patch starts to matter ----------------------------------------------------------
    def differs(self, name: str, source: str, target: str) -> torch.Tensor:
        """Bool per position ([pos]), per position and head ([pos, head]), or per head and query
        position ([head, pos]) for patterns: where the source differs from the target at all."""
        key = (name, source, target)
        if key not in self._differs:
            ne = self._source(source, name) != self._source(target, name)
            kind = hook_kind(name)
            if kind == "stream":
                d = ne.flatten(2).any(-1).any(0)  # [pos]
            elif kind in ("head", "key"):
                d = ne.any(-1).any(0)  # [pos, head]
            else:
                d = ne.any(-1).any(0)  # [head, q_pos]
            self._differs[key] = d
        return self._differs[key]

    def start_of(self, patch: Patch, source: str, target: str) -> int | None:
        """The first position where the patch changes anything, or None for a no-op."""
        first = None
        for site in patch:
            d = self.differs(site.hook, source, target)
            kind = hook_kind(site.hook)
            if kind == "pattern":
                d = d.T  # [q_pos, head]
            if kind != "stream" and site.head is not None:
                d = d[:, site.head]
            elif kind != "stream":
                d = d.any(-1)
            positions = torch.nonzero(d).flatten()
            if site.pos is not None:
                positions = positions[positions == site.pos]
            if len(positions):
                p = int(positions[0])
                first = p if first is None else min(first, p)
        return first

    # -- running --------------------------------------------------------------------------------
    def rows_per_pass(self, start: int) -> int:
        """How many rows one forward pass may hold: the KV cache of every layer for all positions
        plus the widest activations of the suffix, per row, within max_floats."""
        c, n = self.cfg, self.task.n_pos
        per_row = 2 * c.n_layers * n * c.n_heads * c.d_head + (n - start) * (
            4 * c.d_model + c.d_mlp + 2 * c.n_heads * n)
        return max(1, self.max_floats // per_row)

    def prefix_cache(self, target: str, start: int, repeats: int) -> DynamicCache | None:
        """Keys and values of positions < start in the target run, repeated for `repeats` rows per prompt.
        The prefix runs once per (target, start); each pass gets its own copy (a pass appends to it)."""
        if start == 0:
            return None
        key = (target, start)
        if key not in self._prefixes:
            cache = DynamicCache(config=self.lm.model.config)
            with torch.no_grad(), quiet(self.lm), self.lm.hooks(self.base_hooks):
                self.lm.model(input_ids=self.tokens[target][:, :start], past_key_values=cache, use_cache=True)
            self._prefixes[key] = cache
        cache = copy.deepcopy(self._prefixes[key])
        cache.batch_repeat_interleave(repeats)
        return cache

    def forward(self, target: str, start: int, n: int, hooks: list, *, grad: bool = False,
                stop_hook: str = FINAL) -> torch.Tensor:
        """Run n copies of each target prompt from position `start` on (row = prompt x n + copy) under
        `hooks`; return what the final norm gives at the last position [batch x n, d_model]."""
        grabbed = {}

        def grab(act, hook):
            grabbed["x"] = act[:, -1] if stop_hook == FINAL else act
            raise _Stop

        suffix = self.tokens[target][:, start:].repeat_interleave(n, 0)  # [batch * n, S]
        cache = self.prefix_cache(target, start, n)
        run_hooks = [*self.shifted_base(start), *hooks, (stop_hook, grab)]  # interventions, then patches
        with torch.set_grad_enabled(grad), self.lm.hooks(run_hooks):
            try:
                self.lm.model(input_ids=suffix, past_key_values=cache, use_cache=cache is not None)
            except _Stop:
                pass
        self.n_forward += 1
        return grabbed["x"]

    def shifted_base(self, start: int) -> list:
        """The interventions for a run that starts at position `start` (its position 0 is `start`)."""
        out = []
        for name, fn in self.base_hooks:
            if isinstance(fn, Write) and start and (fn.start_pos or fn.positions is not None):
                positions = (None if fn.positions is None
                             else tuple(p - start for p in fn.positions if p >= start))
                fn = Write(fn.name, fn.value, fn.mode, max(0, fn.start_pos - start), positions, fn.head)
            out.append((name, fn))
        return out

    def metric_rows(self, normalized_last: torch.Tensor, n: int) -> torch.Tensor:
        """Logit difference of rows laid out prompt x n + copy: [n, batch]."""
        B = self.task.n_batch
        u, b = self.u.repeat_interleave(n, 0), self.b.repeat_interleave(n, 0)
        return logit_diff(normalized_last, u, b).view(B, n).T

    def _hooks(self, patches: Sequence[Patch], start: int, source: str) -> list:
        """One hook per hook point: a torch.where that writes each patch into its own rows."""
        N, B = len(patches), self.task.n_batch
        n_pos, H = self.task.n_pos, self.cfg.n_heads
        S = n_pos - start
        by_hook: dict[str, list[tuple[int, Site]]] = defaultdict(list)
        for i, patch in enumerate(patches):
            for site in patch:
                by_hook[site.hook].append((i, site))
        hooks = []
        for name, items in by_hook.items():
            kind = hook_kind(name)
            src = self._source(source, name)
            if kind == "stream":
                mask = torch.zeros(N, S, dtype=torch.bool)
            elif kind == "head":
                mask = torch.zeros(N, S, H, dtype=torch.bool)
            elif kind == "key":
                mask = torch.zeros(N, n_pos, H, dtype=torch.bool)
            else:
                mask = torch.zeros(N, H, S, dtype=torch.bool)
            for i, site in items:
                lo = 0 if kind == "key" else start
                pos = slice(None) if site.pos is None else (site.pos - lo if site.pos >= lo else None)
                if pos is None:
                    continue  # a position before the start: identical in source and target
                head = slice(None) if site.head is None else site.head
                if kind == "stream":
                    mask[i, pos] = True
                elif kind in ("head", "key"):
                    mask[i, pos, head] = True
                else:
                    mask[i, head, pos] = True
            hooks.append((name, _where_hook(kind, mask, src, start, B, N)))
        return hooks

    def run(self, patches: Sequence[Patch], *, source: str = "clean", target: str = "corrupt",
            skip_noops: bool = True, progress: Callable[[float], None] | None = None) -> np.ndarray:
        """The metric of the target run with each patch applied: [n_patches, batch] logit differences."""
        if target not in self.tokens:
            raise ValueError(f"target must be 'clean' or 'corrupt', not {target!r}")
        out = np.empty((len(patches), self.task.n_batch))
        groups: dict[int, list[int]] = defaultdict(list)
        for i, patch in enumerate(patches):
            start = self.start_of(patch, source, target)
            if start is None and skip_noops:
                out[i] = self.rows[target]
            else:
                groups[0 if start is None or not skip_noops else start].append(i)
        done, total = 0, sum(len(v) for v in groups.values())
        for start, idx in sorted(groups.items()):
            step = max(1, self.rows_per_pass(start) // self.task.n_batch)
            for lo in range(0, len(idx), step):
                chunk = idx[lo: lo + step]
                hooks = self._hooks([patches[i] for i in chunk], start, source)
                with torch.no_grad():
                    last = self.forward(target, start, len(chunk), hooks)
                out[chunk] = self.metric_rows(last, len(chunk)).numpy()
                done += len(chunk)
                if progress is not None:
                    progress(done / total)
        return out


def _where_hook(kind: str, mask: torch.Tensor, src: torch.Tensor, start: int, B: int, N: int):
    """fn(act, hook): rows prompt x N + i take src where mask[i] is set."""

    def fn(act, hook):
        a = act.view(B, N, *act.shape[1:])
        if kind == "stream":  # a [B, N, S, d]; mask [N, S]
            m, s = mask[None, :, :, None], src[:, None, start:]
        elif kind == "head":  # a [B, N, S, H, dh]; mask [N, S, H]
            m, s = mask[None, :, :, :, None], src[:, None, start:]
        elif kind == "key":  # a [B, N, K, H, dh] (K keys, the last K positions); mask [N, P, H]
            K = act.shape[1]
            m, s = mask[None, :, -K:, :, None], src[:, None, -K:]
        else:  # pattern: a [B, N, H, S, K]; mask [N, H, S]
            K = act.shape[-1]
            m, s = mask[None, :, :, :, None], src[:, None, :, start:, -K:]
        return torch.where(m, s, a).view(act.shape)
    return fn
