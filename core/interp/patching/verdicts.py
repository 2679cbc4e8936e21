"""Verdicts: every sentence the page says about a result, decided here from the result itself.

Each verdict is a small frozen dataclass computed from a result with named thresholds; the page only
words it. Thresholds (normalised metric: clean = 1, corrupted = 0):

- NOTABLE: a single patch that moves the metric by at least this much is worth naming.
- STRONG: a single patch that moves it by at least this much carries most of the behaviour alone.
- FAITHFUL / PARTIAL: a circuit that keeps at least this share of the behaviour is faithful / partly so.
- GOOD_CORRELATION: attribution estimates that correlate this well with the exact patches "track" them.
- HEAD_MATTERS: a head whose patch (or strongest path) moves the metric this much counts as found,
  when methods are cross-checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.interp.patching.attribution import AttributionResult
from core.interp.patching.metric import MIN_GAP, Baseline
from core.interp.patching.path_patching import PathResult
from core.interp.patching.sweeps import SweepResult

NOTABLE = 0.1
STRONG = 0.5
FAITHFUL, PARTIAL = 0.8, 0.5
GOOD_CORRELATION = 0.9
HEAD_MATTERS = 0.1


# -- the pair -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairVerdict:
    clean: float
    corrupt: float
    clean_right: bool  # the model prefers the right answer on the clean prompt
    corrupt_flips: bool  # ... and the other answer on the corrupted one
    usable: bool  # the gap is at least MIN_GAP logits


def pair_verdict(b: Baseline) -> PairVerdict:
    return PairVerdict(b.clean, b.corrupt, b.clean > 0, b.corrupt < 0, abs(b.gap) >= MIN_GAP)


# -- a sweep ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepVerdict:
    top: tuple[tuple[str, str, str, float], ...]  # (panel, row, col, effect), largest |effect| first
    n_strong: int  # patches that alone move the metric by >= STRONG
    n_notable: int
    route: tuple[tuple[str, str], ...]  # stream sweeps: (layer, position) where the difference sits


def sweep_verdict(result: SweepResult, k: int = 3) -> SweepVerdict:
    eff = np.nan_to_num(result.effect)  # [panel, row, col]
    flat = np.argsort(-np.abs(eff), axis=None, kind="stable")[:k]
    top = []
    for i in flat:
        p, r, c = np.unravel_index(i, eff.shape)
        if abs(eff[p, r, c]) >= NOTABLE:
            top.append((result.panels[p], result.rows[r], result.cols[c], float(eff[p, r, c])))
    route = ()
    if result.kind == "stream":
        route = tuple((result.rows[r], result.cols[int(np.argmax(eff[0, r]))]) for r in range(eff.shape[1])
                      if eff[0, r].max() >= NOTABLE)
    n_strong, n_notable = int((np.abs(eff) >= STRONG).sum()), int((np.abs(eff) >= NOTABLE).sum())
    return SweepVerdict(tuple(top), n_strong, n_notable, route)


def route_segments(route) -> list[tuple[str, str, str]]:
    """Collapse a stream route into (first layer, last layer, position) runs."""
    out = []
    for layer, pos in route:
        if out and out[-1][2] == pos:
            out[-1] = (out[-1][0], layer, pos)
        else:
            out.append((layer, layer, pos))
    return out


def head_effects(result: SweepResult) -> np.ndarray:
    """[layer, head] effect of patching each head at every position (a "heads" sweep)."""
    if result.kind != "heads":
        raise ValueError("head effects come from the 'heads' sweep")
    return np.nan_to_num(result.effect[0])


# -- attribution --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttributionVerdict:
    correlation_atp: float
    correlation_star: float
    tracks: bool  # the chosen estimate correlates >= GOOD_CORRELATION with the exact patches
    qk_miss_atp: float  # mean |estimate - exact| over queries and keys
    qk_miss_star: float
    qk_fix_helps: bool  # AtP* misses queries and keys by at least MISS_STEP less than AtP
    failures: tuple[tuple[str, float, float], ...]  # (component, exact, estimate), worst first
    failures_large: bool  # every failure is a patch that moves the metric by >= STRONG


MISS_STEP = 0.01  # normalised: a smaller change of the mean miss is no improvement worth a sentence


def attribution_verdict(a: AttributionResult, estimate: str = "atp_star") -> AttributionVerdict:
    qk = np.array([g in ("q", "k") for g in a.groups])
    miss = lambda est: float(np.abs(est[qk] - a.exact[qk]).mean()) if qk.any() else 0.0  # noqa: E731
    star, lin = miss(a.atp_star), miss(a.atp)
    fails = tuple(a.failures(estimate))
    return AttributionVerdict(a.correlation("atp"), a.correlation("atp_star"),
                              bool(a.correlation(estimate) >= GOOD_CORRELATION), lin, star,
                              lin - star >= MISS_STEP, fails,
                              bool(fails) and all(abs(x) >= STRONG for _, x, _ in fails))


# -- circuits -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CircuitVerdict:
    faithfulness: float
    level: str  # "faithful", "partial" or "unfaithful"
    n_edges: int
    heads: tuple[tuple[int, int], ...]


def circuit_verdict(faithfulness: float, n_edges: int, heads) -> CircuitVerdict:
    level = "faithful" if faithfulness >= FAITHFUL else "partial" if faithfulness >= PARTIAL else "unfaithful"
    return CircuitVerdict(float(faithfulness), level, int(n_edges), tuple(sorted(heads)))


@dataclass(frozen=True)
class GroundTruthVerdict:
    precision: float
    recall: float
    missed: tuple[tuple[int, int], ...]  # listed heads the circuit lacks
    extra: tuple[tuple[int, int], ...]  # circuit heads the list does not name


def ground_truth_verdict(found, truth) -> GroundTruthVerdict:
    found, truth = set(found), set(truth)
    hit = len(found & truth)
    return GroundTruthVerdict(hit / len(found) if found else 0.0, hit / len(truth) if truth else 0.0,
                              tuple(sorted(truth - found)), tuple(sorted(found - truth)))


# -- methods against each other -----------------------------------------------------------------------
@dataclass(frozen=True)
class CrossCheck:
    """Which heads each method finds, and where the methods agree."""

    found: dict  # method -> sorted tuple of (layer, head)
    agreed: tuple[tuple[int, int], ...]  # found by every method
    disputed: tuple[tuple[tuple[int, int], tuple[str, ...]], ...]  # (head, methods that find it)
    resample_faithfulness: float
    mean_faithfulness: float | None
    ablations_agree: bool  # resample and mean ablation give the same verdict level


def path_heads(result: PathResult) -> set[tuple[int, int]]:
    """Heads whose strongest outgoing path (to a later head or the logits) moves the metric by at least
    HEAD_MATTERS."""
    out = set()
    for i, s in enumerate(result.senders):
        row = np.nan_to_num(np.abs(result.effect[i]))
        if max(row.max(initial=0.0), abs(np.nan_to_num(result.direct_effect[i]))) >= HEAD_MATTERS:
            out.add(result.heads[s])
    return out


def cross_check(heads_sweep: SweepResult, paths: PathResult, circuit_heads, resample: float,
                mean: float | None) -> CrossCheck:
    eff = head_effects(heads_sweep)
    found = {
        "exact patching": tuple(sorted((int(a), int(b))
                                       for a, b in np.argwhere(np.abs(eff) >= HEAD_MATTERS))),
        "path patching": tuple(sorted(path_heads(paths))),
        "circuit": tuple(sorted(circuit_heads)),
    }
    every = set.intersection(*(set(v) for v in found.values())) if found else set()
    union = set().union(*(set(v) for v in found.values()))
    disputed = tuple((h, tuple(m for m, v in found.items() if h in v)) for h in sorted(union - every))
    levels = [circuit_verdict(x, 0, ()).level for x in (resample, mean) if x is not None]
    return CrossCheck(found, tuple(sorted(every)), disputed, float(resample), mean,
                      len(set(levels)) <= 1)
