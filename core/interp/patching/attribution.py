"""Attribution patching: every patch of a sweep estimated from one gradient.

Patching activation a from the source run into the target run changes the metric m by about

    m(a_source) - m(a_target)  ~  (a_source - a_target) . dm/da   (at the target run)

a first-order Taylor expansion (Nanda, 2023, "Attribution patching"). Two forward passes (clean
and corrupted, which the engine already has) and one backward pass give the estimate for every
head and position at once, where exact patching needs one patched run each.

Where it fails: the linear estimate is wrong where the function is far from linear over the step
from a_target to a_source. The classic case is attention: a query or key change that moves a
softmax from one key to another (a saturated pattern) has a tiny gradient and a huge effect.
AtP* (Kramár et al., 2024) fixes that part cheaply: for queries and keys it recomputes the
attention pattern exactly,

    pattern' = softmax(log pattern + scale * dq . k)       (or q . dk for keys)

and only linearises what comes after the pattern: (pattern' - pattern) . dm/dpattern. (AtP*'s
other fix, GradDrop against cancelling paths, needs a backward pass per layer and is left out.)
The page draws estimate against exact for every component and names those where they disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from core.interp.patching.engine import PatchEngine
from core.interp.patching.sweeps import DIRECTIONS, PARTS, SweepResult
from core.models import act_name

FAIL_GAP = 0.15  # normalised: an estimate further than this from the exact patch "fails"


@dataclass(frozen=True)
class AttributionResult:
    """For every component (a head at a position, or a head's q / k / v / pattern at every position):
    the exact normalised change of the metric, the AtP estimate and the AtP* estimate (the QK fix for
    q and k; the same as AtP for the others)."""

    direction: str
    names: tuple[str, ...]
    groups: tuple[str, ...]  # "output", "q", "k", "v" or "pattern", per component
    exact: np.ndarray
    atp: np.ndarray
    atp_star: np.ndarray
    seconds: float  # the gradient pass and the estimates (the exact sweeps not included)

    def failures(self, estimate: str = "atp_star", gap: float = FAIL_GAP) -> list[tuple[str, float, float]]:
        """(name, exact, estimate) where the estimate misses the exact value by more than gap, worst first."""
        est = getattr(self, estimate)
        bad = np.abs(est - self.exact) > gap
        rows = [(self.names[i], float(self.exact[i]), float(est[i])) for i in np.flatnonzero(bad)]
        return sorted(rows, key=lambda t: -abs(t[2] - t[1]))

    def correlation(self, estimate: str = "atp_star") -> float:
        est = getattr(self, estimate)
        if np.std(est) == 0 or np.std(self.exact) == 0:
            return float("nan")
        return float(np.corrcoef(est, self.exact)[0, 1])


def attention_scale(q: torch.Tensor, k: torch.Tensor, pattern: torch.Tensor) -> float:
    """The factor between q . k and the pre-softmax scores, read off a cached run by least squares:
    log pattern[q, k] = scale * q . k + (a constant per row) wherever the pattern is not zero.
    q, k [batch, pos, head, d_head]; pattern [batch, head, q_pos, k_pos]."""
    qk = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double())
    p = pattern.double()
    ok = p > 1e-30
    lp = torch.where(ok, p.clamp_min(1e-300).log(), 0.0)
    n = ok.sum(-1, keepdim=True).clamp_min(1)
    lp_c = torch.where(ok, lp - lp.sum(-1, keepdim=True) / n, 0.0)
    qk_c = torch.where(ok, qk - torch.where(ok, qk, 0.0).sum(-1, keepdim=True) / n, 0.0)
    denominator = float((qk_c * qk_c).sum())
    return float((lp_c * qk_c).sum()) / denominator if denominator > 0 else 0.0


def _gradients(engine: PatchEngine, target: str, start: int) -> dict[str, torch.Tensor]:
    """d metric / d activation at z, q, k, v and pattern of every layer, from one backward pass of the
    target run (positions start..; keys and patterns over every position)."""
    names = [act_name(site, layer) for layer in range(engine.cfg.n_layers)
             for site in ("z", "q", "k", "v", "pattern")]
    kept: dict[str, torch.Tensor] = {}

    def leaf(act, hook):
        return act.detach().requires_grad_(True)

    def keep(act, hook):
        act.retain_grad()
        kept[hook.name] = act
        return act

    hooks = [(act_name("resid_pre", 0), leaf)] + [(n, keep) for n in names]
    last = engine.forward(target, start, 1, hooks, grad=True)
    engine.metric_rows(last, 1).sum().backward()
    return {n: (t.grad if t.grad is not None else torch.zeros_like(t)).detach() for n, t in kept.items()}


def attribute(engine: PatchEngine, by_pos: SweepResult, parts: SweepResult) -> AttributionResult:
    """AtP and AtP* for every head x position (output z) and every head's q, k, v and pattern at
    every position, beside the exact sweeps `by_pos` (heads_by_pos) and `parts` (head_parts) run in
    the same direction."""
    if by_pos.direction != parts.direction:
        raise ValueError("the two exact sweeps must share a direction")
    direction = by_pos.direction
    source, target = DIRECTIONS[direction]
    t0 = time.perf_counter()
    c, task, b = engine.cfg, engine.task, engine.baseline
    differing = task.differing_positions()
    s = min(differing) if differing else task.n_pos - 1
    grads = _gradients(engine, target, s)
    src, tgt = engine.caches[source], engine.caches[target]
    B, P, H = task.n_batch, task.n_pos, c.n_heads
    target_metric = b.clean if target == "clean" else b.corrupt
    gap = b.gap if b.gap else float("nan")

    names, groups, atp, star, exact = [], [], [], [], []
    # heads x positions: z
    for layer in range(c.n_layers):
        n = act_name("z", layer)
        D = (src[n] - tgt[n])[:, s:]  # [B, S, head, d_head]
        est = torch.zeros(P, H)
        est[s:] = torch.einsum("bshd,bshd->sh", D, grads[n]) / B
        for h in range(H):
            for p in range(P):
                names.append(f"{layer}.{h} @ {task.labels[p]}")
                groups.append("output")
                atp.append(float(est[p, h]))
                exact.append(float(by_pos.raw[0, layer * H + h, p]))
    star = list(atp)
    # heads' q, k, v, pattern at every position, with the QK fix for q and k
    for layer in range(c.n_layers):
        q_n, k_n, v_n, p_n = (act_name(x, layer) for x in PARTS)
        dq = (src[q_n] - tgt[q_n])[:, s:]  # [B, S, head, d_head]
        dk, dv = src[k_n] - tgt[k_n], src[v_n] - tgt[v_n]  # [B, P, head, d_head]
        dp = (src[p_n] - tgt[p_n])[:, :, s:]  # [B, head, S, P]
        lin = {"q": torch.einsum("bshd,bshd->h", dq, grads[q_n]),
               "k": torch.einsum("bshd,bshd->h", dk, grads[k_n]),
               "v": torch.einsum("bshd,bshd->h", dv, grads[v_n]),
               "pattern": torch.einsum("bhqk,bhqk->h", dp, grads[p_n])}
        scale = attention_scale(tgt[q_n], tgt[k_n], tgt[p_n])
        pat = tgt[p_n][:, :, s:]  # [B, head, S, P]
        log_p = torch.where(pat > 0, pat.clamp_min(1e-38).log(), float("-inf"))
        fixed = {}
        for door, dscore in (
            ("q", torch.einsum("bqhd,bkhd->bhqk", dq, tgt[k_n])),
            ("k", torch.einsum("bqhd,bkhd->bhqk", tgt[q_n][:, s:], dk)),
        ):
            new = torch.softmax(log_p + scale * dscore, dim=-1)
            fixed[door] = torch.einsum("bhqk,bhqk->h", new - pat, grads[p_n])
        for i, part in enumerate(PARTS):
            for h in range(H):
                names.append(f"{layer}.{h} {part}")
                groups.append(part)
                atp.append(float(lin[part][h]) / B)
                star.append(float(fixed[part][h]) / B if part in fixed else float(lin[part][h]) / B)
                exact.append(float(parts.raw[i, layer, h]))
    exact_change = (np.asarray(exact) - target_metric) / gap  # changes of the metric, normalised by the gap
    return AttributionResult(direction, tuple(names), tuple(groups), exact_change, np.asarray(atp) / gap,
                             np.asarray(star) / gap, time.perf_counter() - t0)
