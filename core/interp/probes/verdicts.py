"""What the probes page may say about a result: typed verdicts with named thresholds.

Two questions, each answered from the numbers on screen, never assumed:

1. Where does the property become readable? The first layer whose held-out score (accuracy, or R²
   for a number) reaches READABLE_AT (0.9). At that layer the control task tells whether the layer
   also carries *which word* it was (control above chance by MEMORISE_MARGIN (0.2)), so that a probe
   could pass by memorising; the held-out items say whether it needs to.
   Is the control task as learnable as the real one there? When the selectivity (seen - control)
   is under AS_LEARNABLE (0.1), a random label per word type is learned about as well as the real
   labels: what the probe reads is which word it was.
   How does the score change from the first layer probed to the last? A change under SCORE_MOVES
   (0.05), either way, is no change.
2. Does the model use the direction there? Removing a direction is judged against removing a
   random one of the same rank, on the behaviour's score (logit difference of right vs wrong):
   - the model **chooses with it** when removing it flips the model's choice on FLIP_MARGIN (0.2)
     more of the prompts than a random direction does;
   - it **contributes** when it takes at least EFFECT_SHARE (0.25) of the effect away, and
     EFFECT_MARGIN (0.15) more than a random direction, without flipping choices (other directions
     still carry enough);
   - else the behaviour reads the property **elsewhere** (another direction, or another layer).
   The check means something only where the model shows the behaviour: clean, it must choose the
   right side on at least BEHAVIOUR_AT (0.75) of the prompts. A change of the score by less than
   UNCHANGED (0.05) of the clean effect, either way, is no change (so "-0% of the effect gone" is
   never said).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.interp.probes.causal import CLEAN, REMOVED_RANDOM, CausalResult
from core.interp.probes.probe import ProbeReport

READABLE_AT = 0.9  # held-out accuracy (or R²) from which a property counts as readable
MEMORISE_MARGIN = 0.2  # control accuracy this far above chance: the layer carries word identity
BEHAVIOUR_AT = 0.75  # clean, the model must pick the right side on this share of prompts
FLIP_MARGIN = 0.2  # flips this much more often than with a random direction: used to choose
EFFECT_SHARE = 0.25  # at least this share of the clean effect gone ...
EFFECT_MARGIN = 0.15  # ... and this much more than with a random direction: used, not alone
UNCHANGED = 0.05  # a change under this share of the clean effect (either way) is no change
AS_LEARNABLE = 0.1  # selectivity (seen - control) under this: the control is about as learnable
SCORE_MOVES = 0.05  # a held-out score change, first layer to last, under this (either way) is none


@dataclass(frozen=True)
class Readability:
    """Where the property becomes readable. Indices are positions in report.layers."""

    threshold: float
    first: int | None  # the first layer at or above threshold; None: no layer reaches it
    best: int  # the layer with the highest held-out score
    score: float  # held-out score at `first` (or at `best` when first is None)
    before: float | None  # held-out score at the layer before `first` (None: first is the first)
    control: float  # control score at `first` (or `best`)
    selectivity: float
    memorisable: bool  # the control is far above chance there: the layer carries word identity
    seen: float = float("nan")  # seen-items score at `first` (or `best`): control + selectivity

    @property
    def found(self) -> bool:
        return self.first is not None

    @property
    def as_learnable(self) -> bool | None:
        """The control task is about as learnable as the real one (selectivity under AS_LEARNABLE);
        None when there is no control score."""
        if np.isnan(self.selectivity):
            return None
        return bool(self.selectivity < AS_LEARNABLE)


def readability(report: ProbeReport, threshold: float = READABLE_AT) -> Readability:
    """The readability verdict of a probe report (see the module docstring)."""
    scores = np.asarray(report.test_score, dtype=float)
    hits = np.flatnonzero(scores >= threshold)
    first = int(hits[0]) if len(hits) else None
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    at = best if first is None else first
    control = float(report.control_score[at])
    return Readability(
        threshold=threshold, first=first, best=best, score=float(scores[at]),
        before=float(scores[first - 1]) if first else None, control=control,
        selectivity=float(report.selectivity[at]),
        memorisable=bool(report.target == "class" and control > report.chance + MEMORISE_MARGIN),
        seen=float(report.seen_score[at]))


Trend = Literal["falls", "holds", "rises", "unmeasured"]


@dataclass(frozen=True)
class ScoreTrend:
    """The held-out score at the first and the last layer probed (indices into report.layers)."""

    first: int
    last: int
    start: float
    end: float

    @property
    def trend(self) -> Trend:
        change = self.end - self.start
        if np.isnan(change):
            return "unmeasured"
        return "falls" if change <= -SCORE_MOVES else "rises" if change >= SCORE_MOVES else "holds"


def score_trend(report: ProbeReport) -> ScoreTrend:
    """How the held-out score moves from the first layer probed to the last."""
    scores = np.asarray(report.test_score, dtype=float)
    return ScoreTrend(0, len(scores) - 1, float(scores[0]), float(scores[-1]))


def detail_index(report: ProbeReport, threshold: float = READABLE_AT) -> int:
    """The layer to show first (a position in report.layers): where the property becomes readable,
    else the best one."""
    r = readability(report, threshold)
    return r.best if r.first is None else r.first


Change = Literal["weakened", "unchanged", "strengthened"]
Use = Literal["no behaviour", "chooses", "contributes", "elsewhere"]


@dataclass(frozen=True)
class Removal:
    """What removing one direction did to the behaviour's score."""

    condition: str  # as in CausalResult.conditions, e.g. "probe weights removed"
    clean: float  # mean score with nothing removed
    after: float  # mean score with this direction removed
    share_gone: float  # (clean - after) / |clean|: 1 = all of the effect gone; negative: it grew
    flipped: float  # share of prompts whose choice changed

    @property
    def change(self) -> Change:
        if self.share_gone >= UNCHANGED:
            return "weakened"
        if self.share_gone <= -UNCHANGED:
            return "strengthened"
        return "unchanged"

    @property
    def what(self) -> str:
        """The direction's name without " removed"."""
        return self.condition.removesuffix(" removed")


@dataclass(frozen=True)
class CausalVerdict:
    use: Use
    clean_right: float  # share of prompts where the right side wins, nothing removed
    best: Removal  # the named direction that flips the most choices (then: removes the most)
    other: Removal  # the other named direction
    random: Removal  # a random direction of the same rank
    removals: tuple[Removal, ...]  # every condition except clean, in the result's order


def _removal(c: CausalResult, i: int) -> Removal:
    clean, after = float(c.mean[0]), float(c.mean[i])
    share = (clean - after) / abs(clean) if clean else 0.0
    return Removal(c.conditions[i], clean, after, share, float(c.flipped[i]))


def causal_verdict(c: CausalResult) -> CausalVerdict:
    """The "does the model use this direction" verdict of a causal check (module docstring)."""
    if c.conditions[0] != CLEAN or REMOVED_RANDOM not in c.conditions:
        raise ValueError(f"a causal check needs '{CLEAN}' first and '{REMOVED_RANDOM}'; "
                         f"got {c.conditions}")
    removals = tuple(_removal(c, i) for i in range(1, len(c.conditions)))
    random = next(r for r in removals if r.condition == REMOVED_RANDOM)
    named = [r for r in removals if r.condition != REMOVED_RANDOM]
    best = max(named, key=lambda r: (r.flipped, r.share_gone))
    other = next((r for r in named if r is not best), best)
    clean_right = float(c.right_rate[0])
    if clean_right < BEHAVIOUR_AT or c.mean[0] <= 0:
        use: Use = "no behaviour"
    elif best.flipped - random.flipped >= FLIP_MARGIN:
        use = "chooses"
    elif best.share_gone >= EFFECT_SHARE and best.share_gone - random.share_gone >= EFFECT_MARGIN:
        use = "contributes"
    else:
        use = "elsewhere"
    return CausalVerdict(use, clean_right, best, other, random, removals)
