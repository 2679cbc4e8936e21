"""The steering page's question, graded on constructed outcomes both ways: the steered text has more,
as many, or fewer of the pushed-toward words than the unsteered one; a negative coefficient pushes
toward the - words."""

from __future__ import annotations

import pytest

from core.interp.steering.effect import PointEffect, WordShift
from core.interp.steering.fluency import TextComparison
from core.interp.steering.targets import ConceptTargets
from core.interp.steering.verdict import SteeringOutcome
from core.notebook.questions import Prediction, all_questions
from core.notebook.questions.steering import FEWER, MORE, MORE_CONCEPT_WORDS, SAME

TARGETS = ConceptTargets("positive words", "negative words", (" happy", " glad"), (" sad",),
                         (10, 11), (20,), ("Then Kevin felt",))
HAPPY, GLAD, SAD, OTHER = 10, 11, 20, 5


def outcome(plain: tuple[int, ...], steered: tuple[int, ...], coefficient: float = 3.0) -> SteeringOutcome:
    flat = WordShift((0.5, 0.5), (0.5, 0.5), (0.0, 0.0))
    texts = TextComparison(coefficient, (0,), (plain,), (steered,), (2.0,), (2.2,), greedy=False)
    return SteeringOutcome(PointEffect(coefficient, flat), texts, TARGETS)


def grade(result, answer):
    return MORE_CONCEPT_WORDS.grade(result, Prediction(MORE_CONCEPT_WORDS.id, answer, 0.7))


def test_the_question_is_registered_for_the_steering_page():
    assert all_questions()[MORE_CONCEPT_WORDS.id].page == "steering"
    text = MORE_CONCEPT_WORDS.ask(coefficient="+3.0", where="layer 2, every position",
                                  words="positive words")
    assert "+3.0" in text and "layer 2" in text and "positive words" in text


@pytest.mark.parametrize("plain, steered, measured", [
    ((SAD, OTHER, SAD), (HAPPY, OTHER, GLAD), MORE),  # two positive words where there were none
    ((HAPPY, OTHER), (OTHER, GLAD), SAME),  # one each: a different word, the same count
    ((HAPPY, GLAD, OTHER), (SAD, OTHER, OTHER), FEWER),
])
def test_more_words_grader_goes_both_ways(plain, steered, measured):
    result = outcome(plain, steered)
    right = grade(result, measured)
    assert right.correct and right.measured.startswith(measured.lower())
    for wrong in {MORE, SAME, FEWER} - {measured}:
        assert not grade(result, wrong).correct
    n_plain = sum(i in (HAPPY, GLAD) for i in plain)
    n_steered = sum(i in (HAPPY, GLAD) for i in steered)
    assert f"{n_steered} positive words in the steered text, {n_plain} in the unsteered" in right.measured


def test_a_negative_coefficient_counts_the_negative_words():
    result = outcome((HAPPY, GLAD), (SAD, SAD), coefficient=-3.0)
    assert grade(result, MORE).correct  # more negative words, though fewer positive ones
    assert "2 negative words in the steered text, 0 in the unsteered" in grade(result, MORE).measured
    assert not grade(outcome((HAPPY, GLAD), (SAD, SAD), coefficient=3.0), MORE).correct
