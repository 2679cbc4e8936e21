"""The steering verdict on constructed results that go each way: the concept moves and the text stays
fluent; it moves but the text is word salad; a random push moves it as much; it does not move; it
moves the other way; coefficient 0; and the sign of the coefficient decides which way is "toward"."""

from __future__ import annotations

import math

import pytest

from core.interp.steering import verdict as V
from core.interp.steering.effect import PointEffect, WordShift


def shift(balance: float, base: float = 0.5) -> WordShift:
    """Word numbers whose balance P(+) - P(-) moves by `balance` (half from each side)."""
    return WordShift((base, base + balance / 2), (base, base - balance / 2), (0.0, balance))


def point(vector: float, randoms=(0.02, -0.03, 0.01), coefficient: float = 3.0) -> PointEffect:
    return PointEffect(coefficient, shift(vector), tuple(shift(r) for r in randoms))


def test_concept_moves_clearly_more_than_random_and_the_text_stays_fluent():
    v = V.judge(point(0.5), perplexity_ratio=1.2)
    assert v.outcome is V.Outcome.STEERS and v.worked
    assert v.moved and v.specific and v.fluent
    assert v.shift == pytest.approx(0.5) and v.random_shift == pytest.approx(0.03)


def test_moves_but_word_salad_is_not_steering():
    v = V.judge(point(0.5), perplexity_ratio=40.0)  # the audit's case: 126 vs 2.3 is about 55x
    assert v.outcome is V.Outcome.SALAD and not v.worked
    assert v.moved and v.specific and not v.fluent


def test_a_random_push_that_moves_as_much_makes_it_not_specific():
    v = V.judge(point(0.25, randoms=(0.02, -0.2, 0.05)), perplexity_ratio=1.1)  # the audit's -19.5 pts
    assert v.outcome is V.Outcome.NOT_SPECIFIC and v.moved and not v.specific
    assert v.random_shift == pytest.approx(0.2)


def test_thresholds_are_the_named_constants():
    edge = 1.01 * V.MIN_SHIFT  # just inside every threshold (exact equality is float rounding's call)
    inside = V.judge(point(edge, randoms=(0.99 * edge / V.SPECIFICITY,)), 0.99 * V.FLUENT_RATIO)
    assert inside.outcome is V.Outcome.STEERS
    below = V.judge(point(V.MIN_SHIFT * 0.9, randoms=()), 1.0)
    assert below.outcome is V.Outcome.NO_MOVE and not below.moved
    unspecific = V.judge(point(0.3, randoms=(0.3 / V.SPECIFICITY * 1.01,)), 1.0)
    assert unspecific.outcome is V.Outcome.NOT_SPECIFIC
    salad = V.judge(point(0.3), V.FLUENT_RATIO * 1.01)
    assert salad.outcome is V.Outcome.SALAD


def test_moving_the_other_way_and_coefficient_zero():
    assert V.judge(point(-0.3), 1.0).outcome is V.Outcome.WRONG_WAY
    assert V.judge(point(0.0, coefficient=0.0), 1.0).outcome is V.Outcome.NO_PUSH


def test_a_negative_coefficient_counts_a_fall_of_the_balance_as_toward():
    v = V.judge(point(-0.4, coefficient=-3.0), 1.3)
    assert v.outcome is V.Outcome.STEERS and v.shift == pytest.approx(0.4)
    assert V.judge(point(0.4, coefficient=-3.0), 1.3).outcome is V.Outcome.WRONG_WAY


def test_no_text_to_score_is_neither_fluent_nor_salad():
    v = V.judge(point(0.5), math.nan)  # the prompt filled the context window: nothing was written
    assert not v.fluent and v.outcome is V.Outcome.NO_TEXT and v.moved and v.specific
