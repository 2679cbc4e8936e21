"""Did the steering work? The verdict the page words, computed from the page's own measurements.

Steering "worked" at a coefficient only when three things hold, each with a named threshold:
1. The concept moved: on the evaluation prompts, the balance P(+ words) - P(- words) moved toward
   the side pushed to by at least MIN_SHIFT (10 points).
2. It is the direction, not the size of the push: the vector moved the balance at least
   SPECIFICITY times as far as the largest of a few random directions of the same norm did. A hard
   push in any direction confuses the model and moves the words somewhat; that is not the concept.
3. The text stayed fluent: the steered continuations' perplexity under the unsteered model is at
   most FLUENT_RATIO times the unsteered continuations' (same seeds). Past that, the model writes
   something it would never write itself: the concept may show, but in word salad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from core.interp.steering.effect import PointEffect, count_words
from core.interp.steering.fluency import TextComparison
from core.interp.steering.targets import ConceptTargets

MIN_SHIFT = 0.10  # the balance P(+) - P(-) must move this far (probability) toward the pushed side
SPECIFICITY = 3.0  # ... and this many times as far as the largest random push of the same norm
FLUENT_RATIO = 2.0  # steered perplexity / unsteered perplexity at most this: still fluent


class Outcome(Enum):
    NO_PUSH = "no push"  # coefficient 0
    NO_TEXT = "no text to judge"  # the prompt fills the context window: nothing was written
    STEERS = "steers"  # moved, specific, fluent
    SALAD = "moves the concept, but the text breaks down"  # moved and specific, not fluent
    NOT_SPECIFIC = "a random push moves it as much"  # moved, but not more than random pushes
    WRONG_WAY = "moved the other way"
    NO_MOVE = "did not move the concept"


@dataclass(frozen=True)
class SteeringOutcome:
    """Everything the page measured at one setting (the object its verdict and its question grade)."""

    point: PointEffect  # the words' numbers on the evaluation prompts: vector and random pushes
    texts: TextComparison  # the unsteered and steered continuations, and their perplexities
    targets: ConceptTargets

    @property
    def toward_plus(self) -> bool:
        return self.point.coefficient >= 0

    def toward_words(self, which: str) -> int:
        """Count of the words pushed toward in the shown text, which = "plain" or "steered"."""
        ids = self.texts.plain[0] if which == "plain" else self.texts.steered[0]
        n_plus, n_minus = count_words(ids, self.targets)
        return n_plus if self.toward_plus else n_minus


@dataclass(frozen=True)
class SteeringVerdict:
    outcome: Outcome
    shift: float  # balance shift toward the pushed side (negative: the other way)
    random_shift: float  # the largest |balance shift| of the random pushes
    perplexity_ratio: float  # steered / unsteered perplexity (geometric means over the seeds)
    moved: bool
    specific: bool
    fluent: bool

    @property
    def worked(self) -> bool:
        return self.outcome is Outcome.STEERS


def judge(point: PointEffect, perplexity_ratio: float) -> SteeringVerdict:
    """The verdict from the word shifts (vector and random pushes) and the fluency cost."""
    sign = 1.0 if point.coefficient >= 0 else -1.0
    shift = sign * point.vector.balance_shift
    random_shift = point.largest_random_shift
    moved = shift >= MIN_SHIFT
    specific = moved and shift >= SPECIFICITY * random_shift
    fluent = bool(perplexity_ratio <= FLUENT_RATIO)  # NaN (nothing written) is not fluent
    if point.coefficient == 0:
        outcome = Outcome.NO_PUSH
    elif math.isnan(perplexity_ratio):
        outcome = Outcome.NO_TEXT
    elif not moved:
        outcome = Outcome.WRONG_WAY if shift <= -MIN_SHIFT else Outcome.NO_MOVE
    elif not specific:
        outcome = Outcome.NOT_SPECIFIC
    else:
        outcome = Outcome.STEERS if fluent else Outcome.SALAD
    return SteeringVerdict(outcome, shift, random_shift, float(perplexity_ratio), moved, specific, fluent)


def verdict(outcome: SteeringOutcome) -> SteeringVerdict:
    return judge(outcome.point, outcome.texts.perplexity_ratio)
